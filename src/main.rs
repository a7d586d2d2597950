//! The `flowdex` command. All the work is in the library; `cli` wires it to the terminal.

mod cli;

fn main() {
    std::process::exit(cli::run());
}

/// glibc raises its mmap threshold (up to 32 MiB) each time a large block is freed, so a
/// build's column vectors, megabytes each, soon come from per-thread arenas, which keep the
/// pages of freed segments. A fixed 128 KiB threshold maps them and unmaps them when freed:
/// on the 20 M-record bench corpus, 4 build workers peaked at 279 MiB instead of 791 MiB
/// (`--memory 512M`). Only commands that write segments set it: a search gains from glibc's
/// own threshold, which keeps reusing its per-segment group vectors instead of mapping and
/// unmapping them (query 5 of the search bench: 260 -> 232 ms).
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

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_large_allocations_out_of_arenas() {}
