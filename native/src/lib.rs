//! Tessera's native module (Node-API, no crates). It exports a small, flat set of functions;
//! native/index.ts is the only file that loads it, checks every argument first and maps
//! errors to TesseraError codes. The functions here check their arguments again, so a wrong
//! call from anywhere throws a TypeError/RangeError instead of touching bad memory.
//!
//! Exports (ABI_VERSION 2):
//!   abiVersion: number, features(): { sse42 }, pageSize(), memlockLimit(): [soft, hard],
//!   mapShared(path, sizeBytes, create, lock, readOnly) -> ArrayBuffer, unmap(ab),
//!   madvise(ab, offsetBytes, lengthBytes, advice), msync(ab, offsetBytes, lengthBytes, async),
//!   futexWait(i32, index, expected, timeoutMs) -> 0|1|2, futexWake(i32, index, count) -> n,
//!   crc32c(u8, seed) -> u32, liveMappings() -> n,
//!   pageOffsetOf(u8) -> address of its first byte modulo the page size (alignment, for benchmarks)

mod crc32c;
mod ffi;
mod futex;
mod js;
mod mapping;

use ffi::*;
use js::*;
use std::os::raw::c_void;
use std::ptr::null_mut;

const ABI_VERSION: f64 = 2.0;

/// Wraps a body `fn(&Args) -> JsResult<napi_value>` as a Node-API callback: argument
/// count check, errors thrown into JS, and no panic ever unwinds into Node.
macro_rules! js_fn {
    ($name:ident, $argc:expr, $body:expr) => {
        unsafe extern "C" fn $name(env: napi_env, info: napi_callback_info) -> napi_value {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> JsResult<napi_value> {
                let a = args(env, info, $argc)?;
                $body(&a)
            }));
            match r {
                Ok(Ok(v)) => v,
                Ok(Err(e)) => {
                    e.throw(env);
                    null_mut()
                }
                Err(_) => {
                    JsError::Os { code: "NATIVE_PANIC".into(), message: "tessera native module panicked".into() }.throw(env);
                    null_mut()
                }
            }
        }
    };
}

js_fn!(js_map_shared, 5, |a: &Args| mapping::map_shared(a));
js_fn!(js_unmap, 1, |a: &Args| mapping::unmap(a));
js_fn!(js_madvise, 4, |a: &Args| mapping::advise(a));
js_fn!(js_msync, 4, |a: &Args| mapping::sync(a));
js_fn!(js_futex_wait, 4, |a: &Args| futex::wait(a));
js_fn!(js_futex_wake, 3, |a: &Args| futex::wake(a));
js_fn!(js_crc32c, 2, |a: &Args| -> JsResult<napi_value> {
    let (data, len) = a.typed_array(0, "bytes", NAPI_UINT8_ARRAY, "Uint8Array")?;
    let seed = a.int(1, "seed", 0.0, u32::MAX as f64)? as u32;
    let bytes: &[u8] = if len == 0 { &[] } else { std::slice::from_raw_parts(data, len) };
    uint32(a.env, crc32c::crc32c(seed, bytes))
});
js_fn!(js_page_offset_of, 1, |a: &Args| -> JsResult<napi_value> {
    let (data, _) = a.typed_array(0, "view", NAPI_UINT8_ARRAY, "Uint8Array")?;
    number(a.env, ((data as usize) % mapping::page_size()) as f64)
});
js_fn!(js_page_size, 0, |a: &Args| number(a.env, mapping::page_size() as f64));
js_fn!(js_live_mappings, 0, |a: &Args| number(a.env, mapping::live_count() as f64));
js_fn!(js_memlock_limit, 0, |a: &Args| -> JsResult<napi_value> {
    let (soft, hard) = mapping::memlock_limit();
    let o = object(a.env)?;
    set(a.env, o, "soft", number(a.env, soft)?)?;
    set(a.env, o, "hard", number(a.env, hard)?)?;
    Ok(o)
});
js_fn!(js_features, 0, |a: &Args| -> JsResult<napi_value> {
    let o = object(a.env)?;
    set(a.env, o, "sse42", boolean(a.env, crc32c::has_hardware())?)?;
    set(a.env, o, "arch", string(a.env, std::env::consts::ARCH)?)?;
    Ok(o)
});

unsafe fn export(env: napi_env, exports: napi_value, name: &str,
    f: unsafe extern "C" fn(napi_env, napi_callback_info) -> napi_value) -> JsResult<()> {
    let mut func = null_mut();
    check(napi_create_function(env, name.as_ptr().cast(), name.len(), Some(f), null_mut::<c_void>(), &mut func),
        "napi_create_function")?;
    set(env, exports, name, func)
}

unsafe fn init(env: napi_env, exports: napi_value) -> JsResult<napi_value> {
    export(env, exports, "mapShared", js_map_shared)?;
    export(env, exports, "unmap", js_unmap)?;
    export(env, exports, "madvise", js_madvise)?;
    export(env, exports, "msync", js_msync)?;
    export(env, exports, "futexWait", js_futex_wait)?;
    export(env, exports, "futexWake", js_futex_wake)?;
    export(env, exports, "crc32c", js_crc32c)?;
    export(env, exports, "pageSize", js_page_size)?;
    export(env, exports, "pageOffsetOf", js_page_offset_of)?;
    export(env, exports, "liveMappings", js_live_mappings)?;
    export(env, exports, "memlockLimit", js_memlock_limit)?;
    export(env, exports, "features", js_features)?;
    set(env, exports, "abiVersion", number(env, ABI_VERSION)?)?;
    Ok(exports)
}

/// Node looks this symbol up when the module did not register itself in a constructor.
#[no_mangle]
pub unsafe extern "C" fn napi_register_module_v1(env: napi_env, exports: napi_value) -> napi_value {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| init(env, exports))) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            e.throw(env);
            null_mut()
        }
        Err(_) => null_mut(),
    }
}

/// The Node-API version this module needs (napi_detach_arraybuffer is version 7).
#[no_mangle]
pub extern "C" fn node_api_module_get_api_version_v1() -> i32 {
    8
}
