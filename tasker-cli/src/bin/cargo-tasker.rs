//! `cargo tasker`: scaffolding for tasker workers (`cargo tasker --help`).

fn main() -> std::process::ExitCode {
    tasker_cli::scaffold::main()
}
