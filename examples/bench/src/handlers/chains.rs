//! S2 and S5: ten- and forty-step chains. Their steps note when their
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

    /// Step 11.
    #[step(depends_on = s10)]
    async fn s11(ctx: &StepContext) -> StepResult<()> {
        crate::clock::mark(ctx, 11);
        Ok(())
    }

    /// Step 12.
    #[step(depends_on = s11)]
    async fn s12(ctx: &StepContext) -> StepResult<()> {
        crate::clock::mark(ctx, 12);
        Ok(())
    }

    /// Step 13.
    #[step(depends_on = s12)]
    async fn s13(ctx: &StepContext) -> StepResult<()> {
        crate::clock::mark(ctx, 13);
        Ok(())
    }

    /// Step 14.
    #[step(depends_on = s13)]
    async fn s14(ctx: &StepContext) -> StepResult<()> {
        crate::clock::mark(ctx, 14);
        Ok(())
    }

    /// Step 15.
    #[step(depends_on = s14)]
    async fn s15(ctx: &StepContext) -> StepResult<()> {
        crate::clock::mark(ctx, 15);
        Ok(())
    }

    /// Step 16.
    #[step(depends_on = s15)]
    async fn s16(ctx: &StepContext) -> StepResult<()> {
        crate::clock::mark(ctx, 16);
        Ok(())
    }

    /// Step 17.
    #[step(depends_on = s16)]
    async fn s17(ctx: &StepContext) -> StepResult<()> {
        crate::clock::mark(ctx, 17);
        Ok(())
    }

    /// Step 18.
    #[step(depends_on = s17)]
    async fn s18(ctx: &StepContext) -> StepResult<()> {
        crate::clock::mark(ctx, 18);
        Ok(())
    }

    /// Step 19.
    #[step(depends_on = s18)]
    async fn s19(ctx: &StepContext) -> StepResult<()> {
        crate::clock::mark(ctx, 19);
        Ok(())
    }

    /// Step 20.
    #[step(depends_on = s19)]
    async fn s20(ctx: &StepContext) -> StepResult<()> {
        crate::clock::mark(ctx, 20);
        Ok(())
    }

    /// Step 21.
    #[step(depends_on = s20)]
    async fn s21(ctx: &StepContext) -> StepResult<()> {
        crate::clock::mark(ctx, 21);
        Ok(())
    }

    /// Step 22.
    #[step(depends_on = s21)]
    async fn s22(ctx: &StepContext) -> StepResult<()> {
        crate::clock::mark(ctx, 22);
        Ok(())
    }

    /// Step 23.
    #[step(depends_on = s22)]
    async fn s23(ctx: &StepContext) -> StepResult<()> {
        crate::clock::mark(ctx, 23);
        Ok(())
    }

    /// Step 24.
    #[step(depends_on = s23)]
    async fn s24(ctx: &StepContext) -> StepResult<()> {
        crate::clock::mark(ctx, 24);
        Ok(())
    }

    /// Step 25.
    #[step(depends_on = s24)]
    async fn s25(ctx: &StepContext) -> StepResult<()> {
        crate::clock::mark(ctx, 25);
        Ok(())
    }

    /// Step 26.
    #[step(depends_on = s25)]
    async fn s26(ctx: &StepContext) -> StepResult<()> {
        crate::clock::mark(ctx, 26);
        Ok(())
    }

    /// Step 27.
    #[step(depends_on = s26)]
    async fn s27(ctx: &StepContext) -> StepResult<()> {
        crate::clock::mark(ctx, 27);
        Ok(())
    }

    /// Step 28.
    #[step(depends_on = s27)]
    async fn s28(ctx: &StepContext) -> StepResult<()> {
        crate::clock::mark(ctx, 28);
        Ok(())
    }

    /// Step 29.
    #[step(depends_on = s28)]
    async fn s29(ctx: &StepContext) -> StepResult<()> {
        crate::clock::mark(ctx, 29);
        Ok(())
    }

    /// Step 30.
    #[step(depends_on = s29)]
    async fn s30(ctx: &StepContext) -> StepResult<()> {
        crate::clock::mark(ctx, 30);
        Ok(())
    }

    /// Step 31.
    #[step(depends_on = s30)]
    async fn s31(ctx: &StepContext) -> StepResult<()> {
        crate::clock::mark(ctx, 31);
        Ok(())
    }

    /// Step 32.
    #[step(depends_on = s31)]
    async fn s32(ctx: &StepContext) -> StepResult<()> {
        crate::clock::mark(ctx, 32);
        Ok(())
    }

    /// Step 33.
    #[step(depends_on = s32)]
    async fn s33(ctx: &StepContext) -> StepResult<()> {
        crate::clock::mark(ctx, 33);
        Ok(())
    }

    /// Step 34.
    #[step(depends_on = s33)]
    async fn s34(ctx: &StepContext) -> StepResult<()> {
        crate::clock::mark(ctx, 34);
        Ok(())
    }

    /// Step 35.
    #[step(depends_on = s34)]
    async fn s35(ctx: &StepContext) -> StepResult<()> {
        crate::clock::mark(ctx, 35);
        Ok(())
    }

    /// Step 36.
    #[step(depends_on = s35)]
    async fn s36(ctx: &StepContext) -> StepResult<()> {
        crate::clock::mark(ctx, 36);
        Ok(())
    }

    /// Step 37.
    #[step(depends_on = s36)]
    async fn s37(ctx: &StepContext) -> StepResult<()> {
        crate::clock::mark(ctx, 37);
        Ok(())
    }

    /// Step 38.
    #[step(depends_on = s37)]
    async fn s38(ctx: &StepContext) -> StepResult<()> {
        crate::clock::mark(ctx, 38);
        Ok(())
    }

    /// Step 39.
    #[step(depends_on = s38)]
    async fn s39(ctx: &StepContext) -> StepResult<()> {
        crate::clock::mark(ctx, 39);
        Ok(())
    }

    /// Step 40.
    #[step(depends_on = s39)]
    async fn s40(ctx: &StepContext) -> StepResult<()> {
        crate::clock::mark(ctx, 40);
        Ok(())
    }
}
