//! The `flowdex` command. All the work is in the library; `cli` wires it to the terminal.

mod cli;

fn main() {
    std::process::exit(cli::run());
}
