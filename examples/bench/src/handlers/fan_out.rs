//! S4: one root, 100 parallel steps, one join (written out in full).

use tasker::prelude::*;

/// S4: one root, 100 parallel steps, one join.
pub struct FanOut;

#[task_handler(namespace = "bench", version = "1.0.0")]
impl FanOut {
    /// Root.
    #[step]
    async fn root() -> StepResult<()> {
        Ok(())
    }

    /// Branch 1.
    #[step(depends_on = root)]
    async fn f001() -> StepResult<()> {
        Ok(())
    }

    /// Branch 2.
    #[step(depends_on = root)]
    async fn f002() -> StepResult<()> {
        Ok(())
    }

    /// Branch 3.
    #[step(depends_on = root)]
    async fn f003() -> StepResult<()> {
        Ok(())
    }

    /// Branch 4.
    #[step(depends_on = root)]
    async fn f004() -> StepResult<()> {
        Ok(())
    }

    /// Branch 5.
    #[step(depends_on = root)]
    async fn f005() -> StepResult<()> {
        Ok(())
    }

    /// Branch 6.
    #[step(depends_on = root)]
    async fn f006() -> StepResult<()> {
        Ok(())
    }

    /// Branch 7.
    #[step(depends_on = root)]
    async fn f007() -> StepResult<()> {
        Ok(())
    }

    /// Branch 8.
    #[step(depends_on = root)]
    async fn f008() -> StepResult<()> {
        Ok(())
    }

    /// Branch 9.
    #[step(depends_on = root)]
    async fn f009() -> StepResult<()> {
        Ok(())
    }

    /// Branch 10.
    #[step(depends_on = root)]
    async fn f010() -> StepResult<()> {
        Ok(())
    }

    /// Branch 11.
    #[step(depends_on = root)]
    async fn f011() -> StepResult<()> {
        Ok(())
    }

    /// Branch 12.
    #[step(depends_on = root)]
    async fn f012() -> StepResult<()> {
        Ok(())
    }

    /// Branch 13.
    #[step(depends_on = root)]
    async fn f013() -> StepResult<()> {
        Ok(())
    }

    /// Branch 14.
    #[step(depends_on = root)]
    async fn f014() -> StepResult<()> {
        Ok(())
    }

    /// Branch 15.
    #[step(depends_on = root)]
    async fn f015() -> StepResult<()> {
        Ok(())
    }

    /// Branch 16.
    #[step(depends_on = root)]
    async fn f016() -> StepResult<()> {
        Ok(())
    }

    /// Branch 17.
    #[step(depends_on = root)]
    async fn f017() -> StepResult<()> {
        Ok(())
    }

    /// Branch 18.
    #[step(depends_on = root)]
    async fn f018() -> StepResult<()> {
        Ok(())
    }

    /// Branch 19.
    #[step(depends_on = root)]
    async fn f019() -> StepResult<()> {
        Ok(())
    }

    /// Branch 20.
    #[step(depends_on = root)]
    async fn f020() -> StepResult<()> {
        Ok(())
    }

    /// Branch 21.
    #[step(depends_on = root)]
    async fn f021() -> StepResult<()> {
        Ok(())
    }

    /// Branch 22.
    #[step(depends_on = root)]
    async fn f022() -> StepResult<()> {
        Ok(())
    }

    /// Branch 23.
    #[step(depends_on = root)]
    async fn f023() -> StepResult<()> {
        Ok(())
    }

    /// Branch 24.
    #[step(depends_on = root)]
    async fn f024() -> StepResult<()> {
        Ok(())
    }

    /// Branch 25.
    #[step(depends_on = root)]
    async fn f025() -> StepResult<()> {
        Ok(())
    }

    /// Branch 26.
    #[step(depends_on = root)]
    async fn f026() -> StepResult<()> {
        Ok(())
    }

    /// Branch 27.
    #[step(depends_on = root)]
    async fn f027() -> StepResult<()> {
        Ok(())
    }

    /// Branch 28.
    #[step(depends_on = root)]
    async fn f028() -> StepResult<()> {
        Ok(())
    }

    /// Branch 29.
    #[step(depends_on = root)]
    async fn f029() -> StepResult<()> {
        Ok(())
    }

    /// Branch 30.
    #[step(depends_on = root)]
    async fn f030() -> StepResult<()> {
        Ok(())
    }

    /// Branch 31.
    #[step(depends_on = root)]
    async fn f031() -> StepResult<()> {
        Ok(())
    }

    /// Branch 32.
    #[step(depends_on = root)]
    async fn f032() -> StepResult<()> {
        Ok(())
    }

    /// Branch 33.
    #[step(depends_on = root)]
    async fn f033() -> StepResult<()> {
        Ok(())
    }

    /// Branch 34.
    #[step(depends_on = root)]
    async fn f034() -> StepResult<()> {
        Ok(())
    }

    /// Branch 35.
    #[step(depends_on = root)]
    async fn f035() -> StepResult<()> {
        Ok(())
    }

    /// Branch 36.
    #[step(depends_on = root)]
    async fn f036() -> StepResult<()> {
        Ok(())
    }

    /// Branch 37.
    #[step(depends_on = root)]
    async fn f037() -> StepResult<()> {
        Ok(())
    }

    /// Branch 38.
    #[step(depends_on = root)]
    async fn f038() -> StepResult<()> {
        Ok(())
    }

    /// Branch 39.
    #[step(depends_on = root)]
    async fn f039() -> StepResult<()> {
        Ok(())
    }

    /// Branch 40.
    #[step(depends_on = root)]
    async fn f040() -> StepResult<()> {
        Ok(())
    }

    /// Branch 41.
    #[step(depends_on = root)]
    async fn f041() -> StepResult<()> {
        Ok(())
    }

    /// Branch 42.
    #[step(depends_on = root)]
    async fn f042() -> StepResult<()> {
        Ok(())
    }

    /// Branch 43.
    #[step(depends_on = root)]
    async fn f043() -> StepResult<()> {
        Ok(())
    }

    /// Branch 44.
    #[step(depends_on = root)]
    async fn f044() -> StepResult<()> {
        Ok(())
    }

    /// Branch 45.
    #[step(depends_on = root)]
    async fn f045() -> StepResult<()> {
        Ok(())
    }

    /// Branch 46.
    #[step(depends_on = root)]
    async fn f046() -> StepResult<()> {
        Ok(())
    }

    /// Branch 47.
    #[step(depends_on = root)]
    async fn f047() -> StepResult<()> {
        Ok(())
    }

    /// Branch 48.
    #[step(depends_on = root)]
    async fn f048() -> StepResult<()> {
        Ok(())
    }

    /// Branch 49.
    #[step(depends_on = root)]
    async fn f049() -> StepResult<()> {
        Ok(())
    }

    /// Branch 50.
    #[step(depends_on = root)]
    async fn f050() -> StepResult<()> {
        Ok(())
    }

    /// Branch 51.
    #[step(depends_on = root)]
    async fn f051() -> StepResult<()> {
        Ok(())
    }

    /// Branch 52.
    #[step(depends_on = root)]
    async fn f052() -> StepResult<()> {
        Ok(())
    }

    /// Branch 53.
    #[step(depends_on = root)]
    async fn f053() -> StepResult<()> {
        Ok(())
    }

    /// Branch 54.
    #[step(depends_on = root)]
    async fn f054() -> StepResult<()> {
        Ok(())
    }

    /// Branch 55.
    #[step(depends_on = root)]
    async fn f055() -> StepResult<()> {
        Ok(())
    }

    /// Branch 56.
    #[step(depends_on = root)]
    async fn f056() -> StepResult<()> {
        Ok(())
    }

    /// Branch 57.
    #[step(depends_on = root)]
    async fn f057() -> StepResult<()> {
        Ok(())
    }

    /// Branch 58.
    #[step(depends_on = root)]
    async fn f058() -> StepResult<()> {
        Ok(())
    }

    /// Branch 59.
    #[step(depends_on = root)]
    async fn f059() -> StepResult<()> {
        Ok(())
    }

    /// Branch 60.
    #[step(depends_on = root)]
    async fn f060() -> StepResult<()> {
        Ok(())
    }

    /// Branch 61.
    #[step(depends_on = root)]
    async fn f061() -> StepResult<()> {
        Ok(())
    }

    /// Branch 62.
    #[step(depends_on = root)]
    async fn f062() -> StepResult<()> {
        Ok(())
    }

    /// Branch 63.
    #[step(depends_on = root)]
    async fn f063() -> StepResult<()> {
        Ok(())
    }

    /// Branch 64.
    #[step(depends_on = root)]
    async fn f064() -> StepResult<()> {
        Ok(())
    }

    /// Branch 65.
    #[step(depends_on = root)]
    async fn f065() -> StepResult<()> {
        Ok(())
    }

    /// Branch 66.
    #[step(depends_on = root)]
    async fn f066() -> StepResult<()> {
        Ok(())
    }

    /// Branch 67.
    #[step(depends_on = root)]
    async fn f067() -> StepResult<()> {
        Ok(())
    }

    /// Branch 68.
    #[step(depends_on = root)]
    async fn f068() -> StepResult<()> {
        Ok(())
    }

    /// Branch 69.
    #[step(depends_on = root)]
    async fn f069() -> StepResult<()> {
        Ok(())
    }

    /// Branch 70.
    #[step(depends_on = root)]
    async fn f070() -> StepResult<()> {
        Ok(())
    }

    /// Branch 71.
    #[step(depends_on = root)]
    async fn f071() -> StepResult<()> {
        Ok(())
    }

    /// Branch 72.
    #[step(depends_on = root)]
    async fn f072() -> StepResult<()> {
        Ok(())
    }

    /// Branch 73.
    #[step(depends_on = root)]
    async fn f073() -> StepResult<()> {
        Ok(())
    }

    /// Branch 74.
    #[step(depends_on = root)]
    async fn f074() -> StepResult<()> {
        Ok(())
    }

    /// Branch 75.
    #[step(depends_on = root)]
    async fn f075() -> StepResult<()> {
        Ok(())
    }

    /// Branch 76.
    #[step(depends_on = root)]
    async fn f076() -> StepResult<()> {
        Ok(())
    }

    /// Branch 77.
    #[step(depends_on = root)]
    async fn f077() -> StepResult<()> {
        Ok(())
    }

    /// Branch 78.
    #[step(depends_on = root)]
    async fn f078() -> StepResult<()> {
        Ok(())
    }

    /// Branch 79.
    #[step(depends_on = root)]
    async fn f079() -> StepResult<()> {
        Ok(())
    }

    /// Branch 80.
    #[step(depends_on = root)]
    async fn f080() -> StepResult<()> {
        Ok(())
    }

    /// Branch 81.
    #[step(depends_on = root)]
    async fn f081() -> StepResult<()> {
        Ok(())
    }

    /// Branch 82.
    #[step(depends_on = root)]
    async fn f082() -> StepResult<()> {
        Ok(())
    }

    /// Branch 83.
    #[step(depends_on = root)]
    async fn f083() -> StepResult<()> {
        Ok(())
    }

    /// Branch 84.
    #[step(depends_on = root)]
    async fn f084() -> StepResult<()> {
        Ok(())
    }

    /// Branch 85.
    #[step(depends_on = root)]
    async fn f085() -> StepResult<()> {
        Ok(())
    }

    /// Branch 86.
    #[step(depends_on = root)]
    async fn f086() -> StepResult<()> {
        Ok(())
    }

    /// Branch 87.
    #[step(depends_on = root)]
    async fn f087() -> StepResult<()> {
        Ok(())
    }

    /// Branch 88.
    #[step(depends_on = root)]
    async fn f088() -> StepResult<()> {
        Ok(())
    }

    /// Branch 89.
    #[step(depends_on = root)]
    async fn f089() -> StepResult<()> {
        Ok(())
    }

    /// Branch 90.
    #[step(depends_on = root)]
    async fn f090() -> StepResult<()> {
        Ok(())
    }

    /// Branch 91.
    #[step(depends_on = root)]
    async fn f091() -> StepResult<()> {
        Ok(())
    }

    /// Branch 92.
    #[step(depends_on = root)]
    async fn f092() -> StepResult<()> {
        Ok(())
    }

    /// Branch 93.
    #[step(depends_on = root)]
    async fn f093() -> StepResult<()> {
        Ok(())
    }

    /// Branch 94.
    #[step(depends_on = root)]
    async fn f094() -> StepResult<()> {
        Ok(())
    }

    /// Branch 95.
    #[step(depends_on = root)]
    async fn f095() -> StepResult<()> {
        Ok(())
    }

    /// Branch 96.
    #[step(depends_on = root)]
    async fn f096() -> StepResult<()> {
        Ok(())
    }

    /// Branch 97.
    #[step(depends_on = root)]
    async fn f097() -> StepResult<()> {
        Ok(())
    }

    /// Branch 98.
    #[step(depends_on = root)]
    async fn f098() -> StepResult<()> {
        Ok(())
    }

    /// Branch 99.
    #[step(depends_on = root)]
    async fn f099() -> StepResult<()> {
        Ok(())
    }

    /// Branch 100.
    #[step(depends_on = root)]
    async fn f100() -> StepResult<()> {
        Ok(())
    }

    /// Join.
    #[step(depends_on = [f001, f002, f003, f004, f005, f006, f007, f008, f009, f010, f011, f012, f013, f014, f015, f016, f017, f018, f019, f020, f021, f022, f023, f024, f025, f026, f027, f028, f029, f030, f031, f032, f033, f034, f035, f036, f037, f038, f039, f040, f041, f042, f043, f044, f045, f046, f047, f048, f049, f050, f051, f052, f053, f054, f055, f056, f057, f058, f059, f060, f061, f062, f063, f064, f065, f066, f067, f068, f069, f070, f071, f072, f073, f074, f075, f076, f077, f078, f079, f080, f081, f082, f083, f084, f085, f086, f087, f088, f089, f090, f091, f092, f093, f094, f095, f096, f097, f098, f099, f100])]
    async fn join() -> StepResult<()> {
        Ok(())
    }
}
