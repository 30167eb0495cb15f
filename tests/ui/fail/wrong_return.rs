use tasker::prelude::*;

pub struct Returns;

pub struct NotSerializable;

#[task_handler]
impl Returns {
    #[step]
    async fn plain(_ctx: &StepContext) -> u32 {
        1
    }

    #[step]
    async fn opaque(_ctx: &StepContext) -> StepResult<NotSerializable> {
        Ok(NotSerializable)
    }
}

fn main() {}
