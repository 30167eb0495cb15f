use tasker::prelude::*;

pub struct Blocking;

#[task_handler]
impl Blocking {
    #[step]
    fn work(_ctx: &StepContext) -> StepResult<()> {
        Ok(())
    }
}

fn main() {
    // Uses of the handler elsewhere raise no follow-on errors: one mistake,
    // one error.
    let _ = Blocking::handler();
    let _ = Blocking::request(serde_json::json!({}));
}
