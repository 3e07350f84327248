//! Handing freed heap memory back to the system after a sync.
//!
//! A sync holds a second copy of every listed key for a moment (the listing, beside the
//! registry). glibc keeps the pages freed afterwards for reuse, so without this the
//! process's resident size stays at the sync's peak for good; `malloc_trim` returns
//! the free pages, in the middle of the heap too, to the system.

/// Returns freed heap pages to the system (glibc); nothing elsewhere.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn release_freed() {
    #[allow(unsafe_code)] // the crate's one unsafe call; see SAFETY below
    unsafe extern "C" {
        fn malloc_trim(pad: usize) -> i32;
    }
    // SAFETY: malloc_trim takes no pointers; it walks glibc's own free lists under
    // glibc's arena locks and may be called from any thread at any time.
    #[allow(unsafe_code)]
    unsafe {
        malloc_trim(0);
    }
}

/// Returns freed heap pages to the system (glibc); nothing elsewhere.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_freed() {}
