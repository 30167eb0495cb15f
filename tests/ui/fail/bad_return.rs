use tasker::prelude::*;

pub struct Returns;

#[task_handler]
impl Returns {
    #[step]
    async fn nothing(_ctx: &StepContext) {}
}

fn main() {}
