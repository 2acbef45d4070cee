//! Shared file mappings handed to JavaScript as external ArrayBuffers.
//!
//! Every live mapping is in REGISTRY (address, length, id). unmap/madvise/msync accept an
//! ArrayBuffer only if its memory is a registered mapping, so JavaScript can never make us
//! munmap or madvise memory we did not map (for example V8's own heap). A mapping is
//! unmapped exactly once: by `unmap` (after detaching the ArrayBuffer, so later JS access
//! sees a zero-length buffer instead of a dangling pointer) or, if JS drops the buffer, by
//! the finalizer when V8 collects it. The id guards against a new mapping that reuses the
//! address of an old one whose finalizer runs late.
//!
//! Fault model: a file truncated by someone else below the mapped length makes access to the
//! missing pages raise SIGBUS; we avoid doing that ourselves (create reserves the space with
//! fallocate, attach refuses a file shorter than the requested size) but cannot prevent
//! another process from doing it.
//!
//! Read-only mappings (`readOnly`) are MAP_PRIVATE with PROT_READ | PROT_WRITE over a file
//! opened O_RDONLY, not MAP_SHARED with PROT_READ alone, on purpose. JavaScript cannot be kept
//! from writing: an ArrayBuffer has no read-only mode in Node 20, and the callers hand views of
//! these mappings to user code (client/worker-client.ts yields short-circuit reads as
//! Uint8Arrays over the worker's arena; worker/ufs-task.ts passes them to UFS writers). V8
//! stores into ArrayBuffer memory directly, so a stray write into a PROT_READ page would be a
//! SIGSEGV that kills the whole process, with no JS exception to catch. With MAP_PRIVATE the
//! same write copies that one page for this process: the file and every other process are
//! untouched, and nothing crashes. The cost, accepted: that page then diverges silently (this
//! process keeps its copy and no longer sees the owner's later writes to it); pages never
//! written keep following the file, as Linux shares them until they are written. Revisit when
//! V8 gives ArrayBuffers a read-only mode that throws in JS.

use crate::ffi::*;
use crate::js::*;
use std::fs::OpenOptions;
use std::os::raw::c_void;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::ptr::null_mut;
use std::sync::Mutex;

struct Mapping {
    addr: usize,
    len: usize,
    id: usize,
}

static REGISTRY: Mutex<Vec<Mapping>> = Mutex::new(Vec::new());
static NEXT_ID: Mutex<usize> = Mutex::new(1);

/// The largest mapping: a Uint8Array in Node 20 holds at most 2^32 bytes.
pub const MAX_MAP_BYTES: f64 = 4294967296.0;
pub const MAX_PATH_BYTES: usize = 4096;

pub fn page_size() -> usize {
    let p = unsafe { sysconf(SC_PAGESIZE) };
    if p > 0 { p as usize } else { 4096 }
}

pub fn memlock_limit() -> (f64, f64) {
    let mut r = rlimit { rlim_cur: 0, rlim_max: 0 };
    if unsafe { getrlimit(RLIMIT_MEMLOCK, &mut r) } != 0 {
        return (f64::NAN, f64::NAN);
    }
    let f = |v: u64| if v == RLIM_INFINITY { f64::INFINITY } else { v as f64 };
    (f(r.rlim_cur), f(r.rlim_max))
}

unsafe extern "C" fn finalize(_env: napi_env, data: *mut c_void, hint: *mut c_void) {
    let mut reg = match REGISTRY.lock() { Ok(g) => g, Err(p) => p.into_inner() };
    if let Some(i) = reg.iter().position(|m| m.addr == data as usize && m.id == hint as usize) {
        let m = reg.swap_remove(i);
        munmap(m.addr as *mut c_void, m.len);
    }
}

pub struct MapOptions {
    pub create: bool,
    pub lock: bool,
    pub read_only: bool,
}

/// mapShared(path, sizeBytes, create, lock, readOnly) -> ArrayBuffer
pub unsafe fn map_shared(a: &Args) -> JsResult<napi_value> {
    let path = a.string(0, "path", MAX_PATH_BYTES)?;
    let size = a.int(1, "sizeBytes", 1.0, MAX_MAP_BYTES)? as usize;
    let o = MapOptions { create: a.bool(2, "create")?, lock: a.bool(3, "lock")?, read_only: a.bool(4, "readOnly")? };
    if path.is_empty() {
        return type_error("path must not be empty");
    }
    if o.create && o.read_only {
        return type_error("create and readOnly cannot both be set");
    }
    let file = OpenOptions::new().read(true).write(!o.read_only).create(o.create).mode(0o600).open(&path)
        .map_err(|e| os_error_from(&format!("open({path})"), e))?;
    let meta = file.metadata().map_err(|e| os_error_from(&format!("fstat({path})"), e))?;
    if !meta.is_file() {
        return type_error(format!("{path} is not a regular file"));
    }
    let fd = file.as_raw_fd();
    if (meta.len() as usize) < size {
        if !o.create {
            return range_error(format!("{path} is {} bytes, smaller than sizeBytes {size}", meta.len()));
        }
        // Reserve the pages now (on tmpfs a later write to a missing page would be SIGBUS).
        if fallocate(fd, 0, 0, size as i64) != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(95) {
                file.set_len(size as u64).map_err(|e| os_error_from(&format!("ftruncate({path})"), e))?;
            } else {
                return Err(os_error_from(&format!("fallocate({path}, {size} bytes)"), e));
            }
        }
    }
    let (prot, flags) = if o.read_only { (PROT_READ | PROT_WRITE, MAP_PRIVATE) } else { (PROT_READ | PROT_WRITE, MAP_SHARED) };
    let addr = mmap(null_mut(), size, prot, flags, fd, 0);
    if addr == MAP_FAILED {
        return Err(os_error(&format!("mmap({path}, {size} bytes)")));
    }
    drop(file); // the mapping keeps the file alive
    if o.lock && mlock(addr, size) != 0 {
        let e = std::io::Error::last_os_error();
        munmap(addr, size);
        let (soft, hard) = memlock_limit();
        let base = os_error_from(&format!("mlock({size} bytes)"), e);
        let msg = match base { JsError::Os { message, .. } => message, _ => String::new() };
        return Err(JsError::Os {
            code: "MEMLOCK_LIMIT".into(),
            message: format!("{msg}; RLIMIT_MEMLOCK soft {soft} hard {hard} bytes (raise it with `ulimit -l` or LimitMEMLOCK=, or grant CAP_IPC_LOCK)"),
        });
    }
    let id = { let mut n = NEXT_ID.lock().unwrap_or_else(|p| p.into_inner()); *n += 1; *n };
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner()).push(Mapping { addr: addr as usize, len: size, id });
    let mut result = null_mut();
    let status = napi_create_external_arraybuffer(a.env, addr, size, Some(finalize), id as *mut c_void, &mut result);
    if status != NAPI_OK {
        finalize(a.env, addr, id as *mut c_void);
        return check(status, "napi_create_external_arraybuffer").map(|_| null_mut());
    }
    Ok(result)
}

/// The registered mapping an ArrayBuffer argument views, or a TypeError.
unsafe fn registered(a: &Args, i: usize) -> JsResult<(usize, usize)> {
    let (data, len) = a.array_buffer(i, "buffer")?;
    let reg = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
    match reg.iter().find(|m| m.addr == data as usize && m.len == len && !data.is_null()) {
        Some(m) => Ok((m.addr, m.len)),
        None => type_error("buffer is not a live mapping returned by mapShared"),
    }
}

/// unmap(buffer): detach, then munmap.
pub unsafe fn unmap(a: &Args) -> JsResult<napi_value> {
    let (addr, _) = registered(a, 0)?;
    check(napi_detach_arraybuffer(a.env, a.raw(0)), "napi_detach_arraybuffer")?;
    // Detaching may already have run the finalizer; whoever removes the entry unmaps.
    let taken = {
        let mut reg = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
        reg.iter().position(|m| m.addr == addr).map(|i| reg.swap_remove(i))
    };
    if let Some(m) = taken {
        if munmap(m.addr as *mut c_void, m.len) != 0 {
            return Err(os_error("munmap"));
        }
    }
    undefined(a.env)
}

unsafe fn range_in(a: &Args, len: usize) -> JsResult<(usize, usize)> {
    let off = a.int(1, "offsetBytes", 0.0, len as f64)? as usize;
    let n = a.int(2, "lengthBytes", 0.0, len as f64)? as usize;
    if off + n > len {
        return range_error(format!("offsetBytes + lengthBytes ({}) exceeds the mapping ({len} bytes)", off + n));
    }
    if off % page_size() != 0 {
        return range_error(format!("offsetBytes must be a multiple of the page size {}", page_size()));
    }
    Ok((off, n))
}

/// madvise(buffer, offsetBytes, lengthBytes, advice) with advice 0 willneed, 1 dontneed, 2 hugepage.
pub unsafe fn advise(a: &Args) -> JsResult<napi_value> {
    let (addr, len) = registered(a, 0)?;
    let (off, n) = range_in(a, len)?;
    let advice = match a.int(3, "advice", 0.0, 2.0)? {
        0 => MADV_WILLNEED,
        1 => MADV_DONTNEED,
        _ => MADV_HUGEPAGE,
    };
    if n > 0 && madvise((addr + off) as *mut c_void, n, advice) != 0 {
        return Err(os_error("madvise"));
    }
    undefined(a.env)
}

/// msync(buffer, offsetBytes, lengthBytes, async)
pub unsafe fn sync(a: &Args) -> JsResult<napi_value> {
    let (addr, len) = registered(a, 0)?;
    let (off, n) = range_in(a, len)?;
    let flags = if a.bool(3, "async")? { MS_ASYNC } else { MS_SYNC };
    if n > 0 && msync((addr + off) as *mut c_void, n, flags) != 0 {
        return Err(os_error("msync"));
    }
    undefined(a.env)
}

/// How many mappings are live (tests check that unmap and GC release them).
pub fn live_count() -> usize {
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner()).len()
}
