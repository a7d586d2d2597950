//! The `flowdex` command. All the work is in the library; `cli` wires it to the terminal.

mod cli;

fn main() {
    std::process::exit(cli::run());
}

/// glibc raises its mmap threshold (up to 32 MiB) each time a large block is freed, so a
/// build's column vectors, megabytes each, soon come from per-thread arenas, which keep the
/// pages of freed segments. A fixed 128 KiB threshold maps them and unmaps them when freed:
/// on the 20 M-record bench corpus, 4 build workers peaked at 279 MiB instead of 791 MiB
/// (`--memory 512M`). Only commands that write segments set it: a search gains from keeping
/// its per-segment group vectors in the arenas ([`keep_freed_memory_in_arenas`]).
///
/// Call it before any other thread starts.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn keep_large_allocations_out_of_arenas() {
    // SAFETY: mallopt only sets allocator parameters, and the caller runs before any other
    // thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// A search allocates and frees vectors of a segment's groups, megabytes each, once per
/// segment. glibc maps such blocks fresh until its adaptive threshold has risen past them, and
/// each mapped page faults and is zeroed; a fixed threshold at that adaptive limit (32 MiB on
/// 64-bit systems) takes them from the arenas from the first, where freed ones can be reused.
/// On the 20 M-record bench index one day's top sources faulted 3,336 pages instead of 4,850
/// (`perf stat -r 15`) and took 21.8 instead of 23.4 ms (medians of 9, in turns), and `stats
/// count() by srcaddr, dstaddr` peaked at 720 instead of 726 MB. A fixed threshold also keeps
/// glibc's trim threshold from rising with it; raising that too kept more: 926 MB.
///
/// Call it before any other thread starts.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn keep_freed_memory_in_arenas() {
    // SAFETY: as above.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_large_allocations_out_of_arenas() {}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory_in_arenas() {}
