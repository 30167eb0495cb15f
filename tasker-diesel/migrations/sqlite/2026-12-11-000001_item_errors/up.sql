-- `#[step(for_each = source, on_item_error = "collect")]`: an instance of
-- such a group that fails for good ends `error` with `{"Err": error}` as
-- its result, is counted off its group like a success, and leaves its
-- task running; the steps after the group receive one `Result` per item.
ALTER TABLE tasker_step_fan_outs ADD COLUMN collect_errors BOOLEAN NOT NULL DEFAULT 0;
