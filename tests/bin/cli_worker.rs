//! A user's worker binary as `tests/cli.rs` drives it: the test handlers
//! and tasker's whole CLI, in one call.

use std::process::ExitCode;
use std::sync::Arc;

use tasker_tests::handlers::{Attempts, Switch};

fn main() -> ExitCode {
    tasker_cli::App::new("tasker-cli-worker")
        .about("The test handlers behind tasker's CLI")
        .configure(|builder| {
            builder
                .resource(Arc::new(Attempts::default()))
                .resource(Arc::new(Switch::default()))
                .configure(tasker_tests::fast_config)
        })
        .main()
}
