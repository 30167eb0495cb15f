use tasker::prelude::*;

#[task_handler]
pub struct Handler;

pub trait Workflow {}

pub struct Real;

#[task_handler]
impl Workflow for Real {}

fn main() {}
