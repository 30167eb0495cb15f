use tasker::prelude::*;

pub struct Empty;

#[task_handler]
impl Empty {
    pub async fn helper() {}
}

fn main() {}
