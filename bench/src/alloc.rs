//! The bench's global allocator. Every process of this binary allocates with the system allocator
//! (glibc's malloc), exactly as a plain Rust program does, unless it was started with
//! `HUNCHENSOCKET_BENCH_ALLOCATOR` set in its environment, as the soak starts `serve-soak`:
//!
//! - `glibc`: the system allocator, and every byte handed out and given back is counted;
//! - `mimalloc`: mimalloc (the `mimalloc` crate), counted the same way.
//!
//! The choice is made once, inside the first allocation of the process, before anything exists
//! that another allocator could be asked to free; from then on it never changes. The count is
//! of the bytes the program asked for (`Layout::size`) and has not given back: the heap our code
//! holds, whatever the allocator, so a leak shows in it and an allocator's free pages do not.
//!
//! Why mimalloc (the `mimalloc` crate for its `GlobalAlloc`, `libmimalloc-sys` for
//! `mi_collect`): the soak needs an allocator that keeps RSS flat under connection churn, which
//! glibc's does not for minutes (bench/README.md, "Soak"). jemalloc does too, but
//! tikv-jemallocator builds jemalloc with its configure script, over a minute here on two cores;
//! mimalloc is one C file and builds in seconds.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::CStr;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering::Relaxed};

use mimalloc::MiMalloc;

/// The environment variable read at the first allocation.
pub const ENV: &str = "HUNCHENSOCKET_BENCH_ALLOCATOR";
const ENV_C: &CStr = c"HUNCHENSOCKET_BENCH_ALLOCATOR";

const UNDECIDED: u8 = 0;
/// The system allocator, nothing counted: the default, and what every benchmark server runs on.
const PLAIN: u8 = 1;
const COUNTED_GLIBC: u8 = 2;
const COUNTED_MIMALLOC: u8 = 3;

static MODE: AtomicU8 = AtomicU8::new(UNDECIDED);
/// Bytes handed out and not given back, in the counted modes.
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// The allocators `HUNCHENSOCKET_BENCH_ALLOCATOR` can name.
pub const NAMES: [&str; 2] = ["mimalloc", "glibc"];

#[global_allocator]
static GLOBAL: Switch = Switch;

/// The allocator this process uses, chosen at its first allocation.
struct Switch;

#[inline]
fn mode() -> u8 {
    match MODE.load(Relaxed) {
        UNDECIDED => decide(),
        m => m,
    }
}

#[cold]
fn decide() -> u8 {
    // SAFETY: getenv allocates nothing. Nothing in this binary changes its own environment (the
    // harness sets a child's environment through `Command::env`), so no setenv can race with it.
    let value = unsafe { libc::getenv(ENV_C.as_ptr()) };
    let wanted = if value.is_null() {
        PLAIN
    } else {
        // SAFETY: a non-null getenv result is a NUL-terminated string that lives as long as the
        // environment does, and the environment is never changed (above).
        match unsafe { CStr::from_ptr(value) }.to_bytes() {
            b"mimalloc" => COUNTED_MIMALLOC,
            _ => COUNTED_GLIBC,
        }
    };
    // Two threads deciding at once read the same environment; whichever stores first wins and
    // the other takes its value, so the process has exactly one mode.
    match MODE.compare_exchange(UNDECIDED, wanted, Relaxed, Relaxed) {
        Ok(_) => wanted,
        Err(current) => current,
    }
}

// SAFETY: every call goes to one allocator, the one the fixed mode names, so what one allocator
// handed out is only ever resized or freed by that same allocator; the counting around it only
// adds and subtracts sizes.
unsafe impl GlobalAlloc for Switch {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on unchanged.
        let p = unsafe {
            match mode() {
                COUNTED_MIMALLOC => MiMalloc.alloc(layout),
                _ => System.alloc(layout),
            }
        };
        count_in(p, layout.size());
        p
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in alloc.
        let p = unsafe {
            match mode() {
                COUNTED_MIMALLOC => MiMalloc.alloc_zeroed(layout),
                _ => System.alloc_zeroed(layout),
            }
        };
        count_in(p, layout.size());
        p
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let m = mode();
        // SAFETY: ptr came from this allocator in the same mode (see the impl's comment).
        unsafe {
            match m {
                COUNTED_MIMALLOC => MiMalloc.dealloc(ptr, layout),
                _ => System.dealloc(ptr, layout),
            }
        }
        if m != PLAIN {
            LIVE.fetch_sub(layout.size(), Relaxed);
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let m = mode();
        // SAFETY: as in dealloc; the caller's contract on new_size is passed on unchanged.
        let p = unsafe {
            match m {
                COUNTED_MIMALLOC => MiMalloc.realloc(ptr, layout, new_size),
                _ => System.realloc(ptr, layout, new_size),
            }
        };
        // On failure the old block stays, and so does its count.
        if m != PLAIN && !p.is_null() {
            LIVE.fetch_add(new_size, Relaxed);
            LIVE.fetch_sub(layout.size(), Relaxed);
        }
        p
    }
}

#[inline]
fn count_in(p: *mut u8, size: usize) {
    if !p.is_null() && MODE.load(Relaxed) != PLAIN {
        LIVE.fetch_add(size, Relaxed);
    }
}

/// The allocator this process runs on and, when it counts, the bytes its program holds.
pub fn in_use() -> (&'static str, Option<u64>) {
    match mode() {
        COUNTED_MIMALLOC => ("mimalloc", Some(LIVE.load(Relaxed) as u64)),
        COUNTED_GLIBC => ("glibc", Some(LIVE.load(Relaxed) as u64)),
        _ => ("glibc", None),
    }
}

/// Hands the allocator's free memory back to the kernel, where it can: glibc's `malloc_trim(0)`
/// or mimalloc's `mi_collect(true)`. RSS measured after it tells memory in use from memory the
/// allocator keeps for reuse.
pub fn release_free_memory() {
    if mode() == COUNTED_MIMALLOC {
        // SAFETY: mi_collect has no preconditions.
        unsafe { libmimalloc_sys::mi_collect(true) };
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `counts_when_asked` in a child process of this test binary with the variable set.
    fn child(allocator: &str) {
        let exe = std::env::current_exe().expect("test binary");
        let out = std::process::Command::new(exe)
            .args(["--exact", "alloc::tests::counts_when_asked", "--ignored"])
            .env(ENV, allocator)
            .output()
            .expect("child test");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("1 passed"),
            "{allocator}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn each_allocator_counts_what_is_held() {
        for name in NAMES {
            child(name);
        }
    }

    #[test]
    #[ignore = "run by each_allocator_counts_what_is_held, in a child process"]
    fn counts_when_asked() {
        let wanted = std::env::var(ENV).expect("run with the variable set");
        let (name, Some(before)) = in_use() else {
            panic!("nothing counted under {wanted}");
        };
        assert_eq!(name, wanted);
        let mut v: Vec<u8> = Vec::with_capacity(4 << 20);
        v.push(1);
        let (_, Some(held)) = in_use() else {
            unreachable!()
        };
        // Other test threads may allocate meanwhile, but none holds megabytes.
        assert!(held >= before + (4 << 20), "{before} -> {held}");
        v.reserve_exact(8 << 20);
        let (_, Some(grown)) = in_use() else {
            unreachable!()
        };
        assert!(grown >= before + (8 << 20), "{before} -> {grown}");
        drop(v);
        let (_, Some(after)) = in_use() else {
            unreachable!()
        };
        assert!(after < before + (1 << 20), "{before} -> {after}");
        release_free_memory();
    }

    #[test]
    fn plain_without_the_variable() {
        if std::env::var_os(ENV).is_none() {
            assert_eq!(in_use(), ("glibc", None));
        }
    }
}
