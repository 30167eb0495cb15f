use tasker::prelude::*;

pub struct Reader;

#[task_handler]
impl Reader {
    #[step]
    async fn fetch(_ctx: &StepContext) -> StepResult<u32> {
        Ok(1)
    }

    #[step]
    async fn total(_ctx: &StepContext, fetch: u32) -> StepResult<u32> {
        Ok(fetch)
    }

    #[step(depends_on = fetch)]
    async fn report(_ctx: &StepContext, fetched: u32) -> StepResult<u32> {
        Ok(fetched)
    }
}

fn main() {}
