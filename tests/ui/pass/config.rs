//! `config = T` on a handler and on a step: the types reach the definition
//! and `ctx.handler_config::<T>()` reads them.

use serde::Deserialize;
use tasker::prelude::*;

#[derive(Deserialize)]
pub struct Gateway {
    pub base_url: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Charge {
    pub retries: u32,
}

pub struct Payouts;

#[task_handler(namespace = "ui", config = Gateway)]
impl Payouts {
    #[step(config = Charge)]
    async fn book(ctx: &StepContext) -> StepResult<String> {
        let gateway = ctx.handler_config::<Gateway>()?;
        let charge = ctx.handler_config::<Charge>()?;
        Ok(format!("{} {}", gateway.base_url, charge.retries))
    }
}

fn main() {
    let handler = Payouts::handler();
    assert_eq!(handler.config_type().unwrap().type_name(), "Gateway");
    assert_eq!(handler.step("book").unwrap().config_type().unwrap().type_name(), "Charge");
}
