//! `crate = "..."`: a platform crate that re-exports tasker under its own
//! path; the generated code names that path, not `::tasker`.

mod platform {
    pub use ::tasker as workflows;
}

use platform::workflows::{StepContext, StepResult, TaskHandler};

pub struct Ping;

#[platform::workflows::task_handler(crate = "crate::platform::workflows", namespace = "ops")]
impl Ping {
    #[platform::workflows::step]
    async fn ping(_ctx: &StepContext) -> StepResult<String> {
        Ok("pong".to_owned())
    }
}

fn main() {
    assert_eq!(Ping::handler().key(), "ops/ping@0.1.0");
}
