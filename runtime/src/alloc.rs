//! The process-wide allocator of the `berth` binary, chosen once per
//! process: mimalloc for the CLI and the agent, the system allocator for
//! shims.
//!
//! Why two: loading a large Compose project allocates a node, a string and
//! a span per YAML scalar, and mimalloc cuts a 1,000-service load by a
//! quarter of its instructions; but a shim lives as long as its container,
//! mostly asleep, and mimalloc's first arena is committed eagerly, which
//! costs several MiB of RSS per container (3.2 MiB with the system
//! allocator, 9.4 MiB with mimalloc, measured by bench/run.sh). The shim is
//! the same binary re-executed, so the choice is made from the environment
//! the runtime gives it ([`SYSTEM_ALLOCATOR_ENV`]), at the first allocation,
//! before `main` and before any thread exists; every later allocation and
//! free of the process then goes to the same allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU8, Ordering};

/// Set (to any value) in a process's environment to make it use the system
/// allocator. The runtime sets it for the shims it spawns.
pub const SYSTEM_ALLOCATOR_ENV: &str = "BERTH_SYSTEM_ALLOCATOR";

const UNDECIDED: u8 = 0;
const MIMALLOC: u8 = 1;
const SYSTEM: u8 = 2;

static CHOICE: AtomicU8 = AtomicU8::new(UNDECIDED);

/// mimalloc, or the system allocator where [`SYSTEM_ALLOCATOR_ENV`] is set.
pub struct BerthAllocator;

fn use_system() -> bool {
    match CHOICE.load(Ordering::Relaxed) {
        MIMALLOC => false,
        SYSTEM => true,
        _ => {
            // SAFETY: getenv only reads `environ`, which the loader set up
            // before any Rust code ran; it does not allocate. Two threads
            // racing here read the same environment and store the same
            // answer, so every allocation of the process agrees.
            let system = unsafe { !libc::getenv(c"BERTH_SYSTEM_ALLOCATOR".as_ptr()).is_null() };
            CHOICE.store(if system { SYSTEM } else { MIMALLOC }, Ordering::Relaxed);
            system
        }
    }
}

// SAFETY: every method forwards to one of two sound allocators, and the
// choice between them is fixed before the first allocation (see
// `use_system`), so memory is always freed or resized by the allocator that
// handed it out.
unsafe impl GlobalAlloc for BerthAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe {
            if use_system() {
                System.alloc(layout)
            } else {
                mimalloc::MiMalloc.alloc(layout)
            }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        unsafe {
            if use_system() {
                System.alloc_zeroed(layout)
            } else {
                mimalloc::MiMalloc.alloc_zeroed(layout)
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator with `layout`, and the same
        // choice routes it back to the allocator that made it.
        unsafe {
            if use_system() {
                System.dealloc(ptr, layout)
            } else {
                mimalloc::MiMalloc.dealloc(ptr, layout)
            }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`.
        unsafe {
            if use_system() {
                System.realloc(ptr, layout, new_size)
            } else {
                mimalloc::MiMalloc.realloc(ptr, layout, new_size)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variable_name_matches_the_one_read_before_main() {
        assert_eq!(
            c"BERTH_SYSTEM_ALLOCATOR".to_str().unwrap(),
            SYSTEM_ALLOCATOR_ENV
        );
    }
}
