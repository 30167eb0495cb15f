use serde::{Deserialize, Serialize};
use tasker::prelude::*;

#[derive(Serialize, Deserialize)]
pub struct Order {
    pub id: i64,
}

#[derive(Serialize, Deserialize)]
pub struct Invoice {
    pub number: String,
}

pub struct Billing;

#[task_handler(context = Order)]
impl Billing {
    #[step]
    async fn bill(ctx: &StepContext<Invoice>) -> StepResult<String> {
        Ok(ctx.context().number.clone())
    }
}

fn main() {}
