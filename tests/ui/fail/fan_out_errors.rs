use tasker::prelude::*;

pub struct Invoice;

#[task_handler]
impl Invoice {
    #[step]
    async fn lines(_ctx: &StepContext) -> StepResult<Vec<u32>> {
        Ok(vec![1, 2])
    }

    // Not a dependency.
    #[step(for_each = lines)]
    async fn charge(lines: u32) -> StepResult<u32> {
        Ok(lines)
    }

    // No parameter for the item.
    #[step(depends_on = lines, for_each = lines)]
    async fn refund(_ctx: &StepContext) -> StepResult<u32> {
        Ok(0)
    }

    // Unknown source.
    #[step(depends_on = lines, for_each = line)]
    async fn ship(lines: u32) -> StepResult<u32> {
        Ok(lines)
    }

    // `concurrency` without `for_each`; zero.
    #[step(depends_on = lines, concurrency = 4)]
    async fn audit(lines: Vec<u32>) -> StepResult<usize> {
        Ok(lines.len())
    }

    #[step(depends_on = lines, for_each = lines, concurrency = 0)]
    async fn pack(lines: u32) -> StepResult<u32> {
        Ok(lines)
    }

    // Nested: over a step that runs once per item itself.
    #[step(depends_on = pack, for_each = pack)]
    async fn label(pack: u32) -> StepResult<u32> {
        Ok(pack)
    }
}

fn main() {}
