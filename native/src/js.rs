//! Thin, checked access to JavaScript values through Node-API. Every getter checks the
//! value's type first and returns a `JsError` (thrown as TypeError/RangeError) instead of
//! ever reading memory it was not given. Nothing here allocates on the JS heap except
//! result values.

use crate::ffi::*;
use std::ffi::CString;
use std::os::raw::c_void;
use std::ptr::null_mut;

/// An error to throw into JavaScript. `code` becomes the error's `code` property.
pub enum JsError {
    Type(String),
    Range(String),
    /// An operating-system call failed: code is the errno name (ENOMEM, ...), or a Tessera
    /// marker such as `MEMLOCK_LIMIT`.
    Os { code: String, message: String },
}

pub type JsResult<T> = Result<T, JsError>;

pub fn type_error<T>(msg: impl Into<String>) -> JsResult<T> {
    Err(JsError::Type(msg.into()))
}
pub fn range_error<T>(msg: impl Into<String>) -> JsResult<T> {
    Err(JsError::Range(msg.into()))
}

fn cstring(s: &str) -> CString {
    CString::new(s.replace('\0', " ")).unwrap_or_default()
}

impl JsError {
    pub unsafe fn throw(self, env: napi_env) {
        let mut pending = false;
        napi_is_exception_pending(env, &mut pending);
        if pending {
            return;
        }
        match self {
            JsError::Type(m) => {
                let c = cstring("ERR_INVALID_ARG_TYPE");
                let m = cstring(&m);
                napi_throw_type_error(env, c.as_ptr(), m.as_ptr());
            }
            JsError::Range(m) => {
                let c = cstring("ERR_OUT_OF_RANGE");
                let m = cstring(&m);
                napi_throw_range_error(env, c.as_ptr(), m.as_ptr());
            }
            JsError::Os { code, message } => {
                let c = cstring(&code);
                let m = cstring(&message);
                napi_throw_error(env, c.as_ptr(), m.as_ptr());
            }
        }
    }
}

/// Turns a failed N-API status into an error (a status other than ok is a type mismatch
/// for every getter we use).
pub fn check(status: napi_status, what: &str) -> JsResult<()> {
    if status == NAPI_OK {
        Ok(())
    } else {
        Err(JsError::Os { code: "NAPI_STATUS".into(), message: format!("{what} failed: napi_status {status}") })
    }
}

pub const MAX_ARGS: usize = 6;

pub struct Args {
    pub env: napi_env,
    pub argv: [napi_value; MAX_ARGS],
    pub argc: usize,
}

pub unsafe fn args(env: napi_env, info: napi_callback_info, expected: usize) -> JsResult<Args> {
    let mut a = Args { env, argv: [null_mut(); MAX_ARGS], argc: MAX_ARGS };
    check(napi_get_cb_info(env, info, &mut a.argc, a.argv.as_mut_ptr(), null_mut(), null_mut()), "napi_get_cb_info")?;
    if a.argc < expected {
        return type_error(format!("expected {expected} arguments, got {}", a.argc));
    }
    Ok(a)
}

impl Args {
    unsafe fn type_of(&self, i: usize) -> napi_valuetype {
        let mut t: napi_valuetype = NAPI_UNDEFINED;
        napi_typeof(self.env, self.argv[i], &mut t);
        t
    }

    pub unsafe fn f64(&self, i: usize, name: &str) -> JsResult<f64> {
        if self.type_of(i) != NAPI_NUMBER {
            return type_error(format!("{name} must be a number"));
        }
        let mut v = 0f64;
        check(napi_get_value_double(self.env, self.argv[i], &mut v), "napi_get_value_double")?;
        Ok(v)
    }

    /// An integer in [min, max]; NaN, fractions and out-of-range values are RangeErrors.
    pub unsafe fn int(&self, i: usize, name: &str, min: f64, max: f64) -> JsResult<i64> {
        let v = self.f64(i, name)?;
        if !(v >= min && v <= max) || v.fract() != 0.0 {
            return range_error(format!("{name} must be an integer in [{min}, {max}], got {v}"));
        }
        Ok(v as i64)
    }

    pub unsafe fn bool(&self, i: usize, name: &str) -> JsResult<bool> {
        if self.type_of(i) != NAPI_BOOLEAN {
            return type_error(format!("{name} must be a boolean"));
        }
        let mut v = false;
        check(napi_get_value_bool(self.env, self.argv[i], &mut v), "napi_get_value_bool")?;
        Ok(v)
    }

    pub unsafe fn string(&self, i: usize, name: &str, max_bytes: usize) -> JsResult<String> {
        if self.type_of(i) != NAPI_STRING {
            return type_error(format!("{name} must be a string"));
        }
        let mut len = 0usize;
        check(napi_get_value_string_utf8(self.env, self.argv[i], null_mut(), 0, &mut len), "napi_get_value_string_utf8")?;
        if len > max_bytes {
            return range_error(format!("{name} is longer than {max_bytes} bytes"));
        }
        let mut buf = vec![0u8; len + 1];
        let mut written = 0usize;
        check(napi_get_value_string_utf8(self.env, self.argv[i], buf.as_mut_ptr().cast(), len + 1, &mut written),
            "napi_get_value_string_utf8")?;
        buf.truncate(written);
        String::from_utf8(buf).or_else(|_| type_error(format!("{name} is not valid UTF-8")))
    }

    /// The raw memory of an ArrayBuffer (data may be null when the length is 0 or detached).
    pub unsafe fn array_buffer(&self, i: usize, name: &str) -> JsResult<(*mut u8, usize)> {
        let mut is = false;
        check(napi_is_arraybuffer(self.env, self.argv[i], &mut is), "napi_is_arraybuffer")?;
        if !is {
            return type_error(format!("{name} must be an ArrayBuffer"));
        }
        let mut data: *mut c_void = null_mut();
        let mut len = 0usize;
        check(napi_get_arraybuffer_info(self.env, self.argv[i], &mut data, &mut len), "napi_get_arraybuffer_info")?;
        Ok((data.cast(), len))
    }

    /// The memory a typed array of kind `kind` views: (pointer to its first element, element count).
    pub unsafe fn typed_array(&self, i: usize, name: &str, kind: napi_typedarray_type, kind_name: &str)
        -> JsResult<(*mut u8, usize)> {
        let mut is = false;
        check(napi_is_typedarray(self.env, self.argv[i], &mut is), "napi_is_typedarray")?;
        if !is {
            return type_error(format!("{name} must be a {kind_name}"));
        }
        let mut t: napi_typedarray_type = -1;
        let mut len = 0usize;
        let mut data: *mut c_void = null_mut();
        let mut ab: napi_value = null_mut();
        let mut off = 0usize;
        check(napi_get_typedarray_info(self.env, self.argv[i], &mut t, &mut len, &mut data, &mut ab, &mut off),
            "napi_get_typedarray_info")?;
        if t != kind {
            return type_error(format!("{name} must be a {kind_name}"));
        }
        // napi_get_typedarray_info's data already points at the first element (byte_offset applied).
        if data.is_null() {
            len = 0;
        }
        Ok((data.cast(), len))
    }

    pub fn raw(&self, i: usize) -> napi_value {
        self.argv[i]
    }
}

pub unsafe fn undefined(env: napi_env) -> JsResult<napi_value> {
    let mut v = null_mut();
    check(napi_get_undefined(env, &mut v), "napi_get_undefined")?;
    Ok(v)
}

pub unsafe fn number(env: napi_env, x: f64) -> JsResult<napi_value> {
    let mut v = null_mut();
    check(napi_create_double(env, x, &mut v), "napi_create_double")?;
    Ok(v)
}

pub unsafe fn uint32(env: napi_env, x: u32) -> JsResult<napi_value> {
    let mut v = null_mut();
    check(napi_create_uint32(env, x, &mut v), "napi_create_uint32")?;
    Ok(v)
}

pub unsafe fn boolean(env: napi_env, x: bool) -> JsResult<napi_value> {
    let mut v = null_mut();
    check(napi_get_boolean(env, x, &mut v), "napi_get_boolean")?;
    Ok(v)
}

pub unsafe fn string(env: napi_env, s: &str) -> JsResult<napi_value> {
    let mut v = null_mut();
    check(napi_create_string_utf8(env, s.as_ptr().cast(), s.len(), &mut v), "napi_create_string_utf8")?;
    Ok(v)
}

pub unsafe fn object(env: napi_env) -> JsResult<napi_value> {
    let mut v = null_mut();
    check(napi_create_object(env, &mut v), "napi_create_object")?;
    Ok(v)
}

pub unsafe fn set(env: napi_env, obj: napi_value, key: &str, value: napi_value) -> JsResult<()> {
    let k = cstring(key);
    check(napi_set_named_property(env, obj, k.as_ptr(), value), "napi_set_named_property")
}

/// errno → its symbolic name, for the `code` of thrown errors.
pub fn errno_name(errno: i32) -> String {
    let name = match errno {
        1 => "EPERM", 2 => "ENOENT", 4 => "EINTR", 5 => "EIO", 9 => "EBADF", 11 => "EAGAIN",
        12 => "ENOMEM", 13 => "EACCES", 14 => "EFAULT", 16 => "EBUSY", 17 => "EEXIST", 19 => "ENODEV",
        20 => "ENOTDIR", 21 => "EISDIR", 22 => "EINVAL", 23 => "ENFILE", 24 => "EMFILE", 27 => "EFBIG",
        28 => "ENOSPC", 30 => "EROFS", 36 => "ENAMETOOLONG", 38 => "ENOSYS", 95 => "EOPNOTSUPP",
        110 => "ETIMEDOUT",
        _ => return format!("ERRNO_{errno}"),
    };
    name.to_string()
}

/// The last OS error as a JsError: `<what> failed: <strerror> (ENAME)`.
pub fn os_error(what: &str) -> JsError {
    let e = std::io::Error::last_os_error();
    os_error_from(what, e)
}

pub fn os_error_from(what: &str, e: std::io::Error) -> JsError {
    let errno = e.raw_os_error().unwrap_or(0);
    let code = errno_name(errno);
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text).to_string();
    JsError::Os { message: format!("{what} failed: {text} ({code})"), code }
}
