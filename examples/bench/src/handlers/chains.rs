//! S2 and S5: ten- and forty-step chains. S2's steps note when their
//! body runs (`crate::clock`), as a user timing their own code would.

use tasker::prelude::*;

/// S2: a chain of 10 steps.
pub struct Chain10;

#[task_handler(namespace = "bench", version = "1.0.0")]
impl Chain10 {
    /// Step 1.
    #[step]
    async fn s01(ctx: &StepContext) -> StepResult<()> {
        crate::clock::mark(ctx, 1);
        Ok(())
    }

    /// Step 2.
    #[step(depends_on = s01)]
    async fn s02(ctx: &StepContext) -> StepResult<()> {
        crate::clock::mark(ctx, 2);
        Ok(())
    }

    /// Step 3.
    #[step(depends_on = s02)]
    async fn s03(ctx: &StepContext) -> StepResult<()> {
        crate::clock::mark(ctx, 3);
        Ok(())
    }

    /// Step 4.
    #[step(depends_on = s03)]
    async fn s04(ctx: &StepContext) -> StepResult<()> {
        crate::clock::mark(ctx, 4);
        Ok(())
    }

    /// Step 5.
    #[step(depends_on = s04)]
    async fn s05(ctx: &StepContext) -> StepResult<()> {
        crate::clock::mark(ctx, 5);
        Ok(())
    }

    /// Step 6.
    #[step(depends_on = s05)]
    async fn s06(ctx: &StepContext) -> StepResult<()> {
        crate::clock::mark(ctx, 6);
        Ok(())
    }

    /// Step 7.
    #[step(depends_on = s06)]
    async fn s07(ctx: &StepContext) -> StepResult<()> {
        crate::clock::mark(ctx, 7);
        Ok(())
    }

    /// Step 8.
    #[step(depends_on = s07)]
    async fn s08(ctx: &StepContext) -> StepResult<()> {
        crate::clock::mark(ctx, 8);
        Ok(())
    }

    /// Step 9.
    #[step(depends_on = s08)]
    async fn s09(ctx: &StepContext) -> StepResult<()> {
        crate::clock::mark(ctx, 9);
        Ok(())
    }

    /// Step 10.
    #[step(depends_on = s09)]
    async fn s10(ctx: &StepContext) -> StepResult<()> {
        crate::clock::mark(ctx, 10);
        Ok(())
    }
}

/// S5: a chain of 40 steps.
pub struct Chain40;

#[task_handler(namespace = "bench", version = "1.0.0")]
impl Chain40 {
    /// Step 1.
    #[step]
    async fn s01() -> StepResult<()> {
        Ok(())
    }

    /// Step 2.
    #[step(depends_on = s01)]
    async fn s02() -> StepResult<()> {
        Ok(())
    }

    /// Step 3.
    #[step(depends_on = s02)]
    async fn s03() -> StepResult<()> {
        Ok(())
    }

    /// Step 4.
    #[step(depends_on = s03)]
    async fn s04() -> StepResult<()> {
        Ok(())
    }

    /// Step 5.
    #[step(depends_on = s04)]
    async fn s05() -> StepResult<()> {
        Ok(())
    }

    /// Step 6.
    #[step(depends_on = s05)]
    async fn s06() -> StepResult<()> {
        Ok(())
    }

    /// Step 7.
    #[step(depends_on = s06)]
    async fn s07() -> StepResult<()> {
        Ok(())
    }

    /// Step 8.
    #[step(depends_on = s07)]
    async fn s08() -> StepResult<()> {
        Ok(())
    }

    /// Step 9.
    #[step(depends_on = s08)]
    async fn s09() -> StepResult<()> {
        Ok(())
    }

    /// Step 10.
    #[step(depends_on = s09)]
    async fn s10() -> StepResult<()> {
        Ok(())
    }

    /// Step 11.
    #[step(depends_on = s10)]
    async fn s11() -> StepResult<()> {
        Ok(())
    }

    /// Step 12.
    #[step(depends_on = s11)]
    async fn s12() -> StepResult<()> {
        Ok(())
    }

    /// Step 13.
    #[step(depends_on = s12)]
    async fn s13() -> StepResult<()> {
        Ok(())
    }

    /// Step 14.
    #[step(depends_on = s13)]
    async fn s14() -> StepResult<()> {
        Ok(())
    }

    /// Step 15.
    #[step(depends_on = s14)]
    async fn s15() -> StepResult<()> {
        Ok(())
    }

    /// Step 16.
    #[step(depends_on = s15)]
    async fn s16() -> StepResult<()> {
        Ok(())
    }

    /// Step 17.
    #[step(depends_on = s16)]
    async fn s17() -> StepResult<()> {
        Ok(())
    }

    /// Step 18.
    #[step(depends_on = s17)]
    async fn s18() -> StepResult<()> {
        Ok(())
    }

    /// Step 19.
    #[step(depends_on = s18)]
    async fn s19() -> StepResult<()> {
        Ok(())
    }

    /// Step 20.
    #[step(depends_on = s19)]
    async fn s20() -> StepResult<()> {
        Ok(())
    }

    /// Step 21.
    #[step(depends_on = s20)]
    async fn s21() -> StepResult<()> {
        Ok(())
    }

    /// Step 22.
    #[step(depends_on = s21)]
    async fn s22() -> StepResult<()> {
        Ok(())
    }

    /// Step 23.
    #[step(depends_on = s22)]
    async fn s23() -> StepResult<()> {
        Ok(())
    }

    /// Step 24.
    #[step(depends_on = s23)]
    async fn s24() -> StepResult<()> {
        Ok(())
    }

    /// Step 25.
    #[step(depends_on = s24)]
    async fn s25() -> StepResult<()> {
        Ok(())
    }

    /// Step 26.
    #[step(depends_on = s25)]
    async fn s26() -> StepResult<()> {
        Ok(())
    }

    /// Step 27.
    #[step(depends_on = s26)]
    async fn s27() -> StepResult<()> {
        Ok(())
    }

    /// Step 28.
    #[step(depends_on = s27)]
    async fn s28() -> StepResult<()> {
        Ok(())
    }

    /// Step 29.
    #[step(depends_on = s28)]
    async fn s29() -> StepResult<()> {
        Ok(())
    }

    /// Step 30.
    #[step(depends_on = s29)]
    async fn s30() -> StepResult<()> {
        Ok(())
    }

    /// Step 31.
    #[step(depends_on = s30)]
    async fn s31() -> StepResult<()> {
        Ok(())
    }

    /// Step 32.
    #[step(depends_on = s31)]
    async fn s32() -> StepResult<()> {
        Ok(())
    }

    /// Step 33.
    #[step(depends_on = s32)]
    async fn s33() -> StepResult<()> {
        Ok(())
    }

    /// Step 34.
    #[step(depends_on = s33)]
    async fn s34() -> StepResult<()> {
        Ok(())
    }

    /// Step 35.
    #[step(depends_on = s34)]
    async fn s35() -> StepResult<()> {
        Ok(())
    }

    /// Step 36.
    #[step(depends_on = s35)]
    async fn s36() -> StepResult<()> {
        Ok(())
    }

    /// Step 37.
    #[step(depends_on = s36)]
    async fn s37() -> StepResult<()> {
        Ok(())
    }

    /// Step 38.
    #[step(depends_on = s37)]
    async fn s38() -> StepResult<()> {
        Ok(())
    }

    /// Step 39.
    #[step(depends_on = s38)]
    async fn s39() -> StepResult<()> {
        Ok(())
    }

    /// Step 40.
    #[step(depends_on = s39)]
    async fn s40() -> StepResult<()> {
        Ok(())
    }
}
