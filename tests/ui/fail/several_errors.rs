use tasker::prelude::*;

pub struct Many;

#[task_handler(version = "one", colour = "blue")]
impl Many {
    #[step(depends_on = missing)]
    async fn a(_ctx: &StepContext) -> StepResult<()> {
        Ok(())
    }

    #[step(depends_on = [a, c])]
    fn b(_ctx: &StepContext) -> StepResult<()> {
        Ok(())
    }

    #[step(depends_on = b)]
    async fn c(_ctx: &StepContext, a: ()) -> StepResult<()> {
        Ok(a)
    }
}

fn main() {}
