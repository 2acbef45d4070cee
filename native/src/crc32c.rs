//! CRC32C (Castagnoli, reflected polynomial 0x82f63b78), bit-for-bit equal to
//! core/crc32c.ts's `crc32cTs`: `crc32c(b"123456789", 0) == 0xe3069283`, and `seed` is a
//! previous result, so data can be checksummed in pieces.
//!
//! Hardware path (x86_64 with SSE4.2, detected at run time): the crc32 instruction has a
//! throughput of one per cycle but a latency of three, so one dependent chain reaches a third
//! of the peak. Large inputs are cut into three interleaved streams whose CRCs are combined
//! with "append N zero bytes" operators (Mark Adler's method, crc32c.c): the register of a
//! stream is shifted over the bytes of the streams after it by table lookup.
//!
//!   |<---- LONG ---->|<---- LONG ---->|<---- LONG ---->|   3 chains run in parallel
//!     crc0              crc1 (from 0)    crc2 (from 0)
//!   crc = shift_LONG(shift_LONG(crc0) ^ crc1) ^ crc2
//!
//! Software path: slice-by-8, the same tables as the TS code.

use std::sync::OnceLock;

const POLY: u32 = 0x82f63b78;
const LONG: usize = 8192;
const SHORT: usize = 256;

struct Tables {
    slice8: [[u32; 256]; 8],
    shift_long: [[u32; 256]; 4],
    shift_short: [[u32; 256]; 4],
}

static TABLES: OnceLock<Box<Tables>> = OnceLock::new();

fn tables() -> &'static Tables {
    TABLES.get_or_init(|| {
        let mut t = Box::new(Tables { slice8: [[0; 256]; 8], shift_long: [[0; 256]; 4], shift_short: [[0; 256]; 4] });
        for n in 0..256u32 {
            let mut c = n;
            for _ in 0..8 {
                c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            }
            t.slice8[0][n as usize] = c;
        }
        for k in 1..8 {
            for n in 0..256 {
                let prev = t.slice8[k - 1][n];
                t.slice8[k][n] = (prev >> 8) ^ t.slice8[0][(prev & 0xff) as usize];
            }
        }
        t.shift_long = zeros_tables(LONG);
        t.shift_short = zeros_tables(SHORT);
        t
    })
}

// ---- GF(2) operators for appending zero bytes (len must be a power of two) -------------

fn gf2_times(mat: &[u32; 32], mut vec: u32) -> u32 {
    let mut sum = 0;
    let mut i = 0;
    while vec != 0 {
        if vec & 1 != 0 {
            sum ^= mat[i];
        }
        vec >>= 1;
        i += 1;
    }
    sum
}

fn gf2_square(mat: &[u32; 32]) -> [u32; 32] {
    let mut sq = [0u32; 32];
    for n in 0..32 {
        sq[n] = gf2_times(mat, mat[n]);
    }
    sq
}

fn zeros_operator(len_bytes: usize) -> [u32; 32] {
    assert!(len_bytes.is_power_of_two());
    // Operator for one zero bit, then square: 2 bits, 4 bits, 8 bits = 1 byte, ...
    let mut op = [0u32; 32];
    op[0] = POLY;
    for n in 1..32 {
        op[n] = 1 << (n - 1);
    }
    for _ in 0..3 {
        op = gf2_square(&op);
    }
    let mut len = len_bytes;
    while len > 1 {
        op = gf2_square(&op);
        len >>= 1;
    }
    op
}

fn zeros_tables(len_bytes: usize) -> [[u32; 256]; 4] {
    let op = zeros_operator(len_bytes);
    let mut z = [[0u32; 256]; 4];
    for n in 0..256u32 {
        z[0][n as usize] = gf2_times(&op, n);
        z[1][n as usize] = gf2_times(&op, n << 8);
        z[2][n as usize] = gf2_times(&op, n << 16);
        z[3][n as usize] = gf2_times(&op, n << 24);
    }
    z
}

#[inline]
fn shift(z: &[[u32; 256]; 4], crc: u32) -> u32 {
    z[0][(crc & 0xff) as usize] ^ z[1][((crc >> 8) & 0xff) as usize] ^ z[2][((crc >> 16) & 0xff) as usize]
        ^ z[3][(crc >> 24) as usize]
}

// ---- software: slice-by-8 ---------------------------------------------------------------

fn crc32c_sw(seed: u32, bytes: &[u8]) -> u32 {
    let t = &tables().slice8;
    let mut crc = !seed;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let a = crc ^ u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        crc = t[7][(a & 0xff) as usize] ^ t[6][((a >> 8) & 0xff) as usize] ^ t[5][((a >> 16) & 0xff) as usize]
            ^ t[4][(a >> 24) as usize] ^ t[3][c[4] as usize] ^ t[2][c[5] as usize] ^ t[1][c[6] as usize]
            ^ t[0][c[7] as usize];
    }
    for &b in chunks.remainder() {
        crc = t[0][((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

// ---- hardware: SSE4.2 crc32 instruction, three streams ----------------------------------

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse4.2")]
unsafe fn crc32c_hw(seed: u32, bytes: &[u8]) -> u32 {
    use core::arch::x86_64::{_mm_crc32_u64, _mm_crc32_u8};
    let t = tables();
    let mut p = bytes.as_ptr();
    let mut len = bytes.len();
    let mut crc0 = (!seed) as u64;
    // Bring the pointer to an 8-byte boundary.
    while len > 0 && (p as usize) & 7 != 0 {
        crc0 = _mm_crc32_u8(crc0 as u32, *p) as u64;
        p = p.add(1);
        len -= 1;
    }
    for (block, z) in [(LONG, &t.shift_long), (SHORT, &t.shift_short)] {
        while len >= block * 3 {
            let mut crc1 = 0u64;
            let mut crc2 = 0u64;
            let end = p.add(block);
            while p < end {
                crc0 = _mm_crc32_u64(crc0, (p as *const u64).read());
                crc1 = _mm_crc32_u64(crc1, (p.add(block) as *const u64).read());
                crc2 = _mm_crc32_u64(crc2, (p.add(2 * block) as *const u64).read());
                p = p.add(8);
            }
            crc0 = (shift(z, crc0 as u32) ^ crc1 as u32) as u64;
            crc0 = (shift(z, crc0 as u32) ^ crc2 as u32) as u64;
            p = p.add(2 * block);
            len -= 3 * block;
        }
    }
    while len >= 8 {
        crc0 = _mm_crc32_u64(crc0, (p as *const u64).read());
        p = p.add(8);
        len -= 8;
    }
    while len > 0 {
        crc0 = _mm_crc32_u8(crc0 as u32, *p) as u64;
        p = p.add(1);
        len -= 1;
    }
    !(crc0 as u32)
}

pub fn has_hardware() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("sse4.2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

static HW: OnceLock<bool> = OnceLock::new();

pub fn crc32c(seed: u32, bytes: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        if *HW.get_or_init(has_hardware) {
            // SAFETY: the CPU supports SSE4.2 (checked above at run time).
            return unsafe { crc32c_hw(seed, bytes) };
        }
    }
    let _ = &HW;
    crc32c_sw(seed, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value() {
        assert_eq!(crc32c(0, b"123456789"), 0xe3069283);
        assert_eq!(crc32c_sw(0, b"123456789"), 0xe3069283);
    }

    #[test]
    fn hardware_equals_software_on_every_length_and_offset() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        for &len in &[0usize, 1, 7, 8, 9, 255, 767, 768, 769, 24575, 24576, 24577, 100_003, 199_990] {
            for off in 0..9 {
                let s = &data[off..off + len];
                assert_eq!(crc32c(7, s), crc32c_sw(7, s), "len {len} off {off}");
            }
        }
    }
}
