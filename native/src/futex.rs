//! futex wait/wake on an Int32Array element, for arenas that are not SharedArrayBuffers
//! (V8 refuses Atomics.wait on an ordinary ArrayBuffer, and an mmap arena is one).
//! FUTEX_WAIT/FUTEX_WAKE are used WITHOUT FUTEX_PRIVATE_FLAG: the kernel keys the waiter by
//! the backing file page, so a wake in one process reaches a waiter in another process that
//! maps the same file. These do not interoperate with Atomics.wait/notify (V8 keeps its own
//! waiter lists): one arena uses one or the other.

use crate::ffi::*;
use crate::js::*;
use std::ptr::null_mut;

/// futexWait(int32array, index, expected, timeoutMs) -> 0 ok, 1 not-equal, 2 timed-out.
/// timeoutMs is >= 0 or Infinity. Blocks the calling thread, like Atomics.wait.
pub unsafe fn wait(a: &Args) -> JsResult<napi_value> {
    let addr = element(a)?;
    let expected = a.int(2, "expected", i32::MIN as f64, u32::MAX as f64)? as u32 as i32;
    let timeout_ms = a.f64(3, "timeoutMs")?;
    if !(timeout_ms >= 0.0) {
        return range_error("timeoutMs must be >= 0 or Infinity");
    }
    let deadline = if timeout_ms.is_finite() { Some(now_ns() + (timeout_ms * 1e6) as u128) } else { None };
    loop {
        let mut ts = timespec { tv_sec: 0, tv_nsec: 0 };
        let tsp: *const timespec = match deadline {
            None => std::ptr::null(),
            Some(d) => {
                let now = now_ns();
                let left = if d > now { d - now } else { 0 };
                ts.tv_sec = (left / 1_000_000_000) as i64;
                ts.tv_nsec = (left % 1_000_000_000) as i64;
                &ts
            }
        };
        let r = syscall(SYS_FUTEX, addr, FUTEX_WAIT, expected, tsp, null_mut::<i32>(), 0i32);
        if r == 0 {
            return uint32(a.env, 0);
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(11) => return uint32(a.env, 1),  // EAGAIN: value was not `expected`
            Some(110) => return uint32(a.env, 2), // ETIMEDOUT
            Some(4) => continue,                  // EINTR: wait again for the time left
            _ => return Err(os_error_from("futex(FUTEX_WAIT)", e)),
        }
    }
}

/// futexWake(int32array, index, count) -> number of waiters woken.
pub unsafe fn wake(a: &Args) -> JsResult<napi_value> {
    let addr = element(a)?;
    let count = a.int(2, "count", 0.0, i32::MAX as f64)? as i32;
    let r = syscall(SYS_FUTEX, addr, FUTEX_WAKE, count, std::ptr::null::<timespec>(), null_mut::<i32>(), 0i32);
    if r < 0 {
        return Err(os_error("futex(FUTEX_WAKE)"));
    }
    uint32(a.env, r as u32)
}

unsafe fn element(a: &Args) -> JsResult<*mut i32> {
    let (data, len) = a.typed_array(0, "array", NAPI_INT32_ARRAY, "Int32Array")?;
    if len == 0 {
        return range_error("array is empty or detached");
    }
    let index = a.int(1, "index", 0.0, (len - 1) as f64)? as usize;
    let addr = data.add(index * 4) as *mut i32;
    if (addr as usize) % 4 != 0 {
        return range_error("array element is not 4-byte aligned");
    }
    Ok(addr)
}

fn now_ns() -> u128 {
    let mut ts = timespec { tv_sec: 0, tv_nsec: 0 };
    unsafe { clock_gettime(CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u128 * 1_000_000_000 + ts.tv_nsec as u128
}
