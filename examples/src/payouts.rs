//! Merchant payouts: a fan-out, a resumable reconciliation and a decision.
//!
//! ```text
//!   accounts                 reconcile     (a batch over the day's ledger, checkpointed)
//!      |                         |
//!   verify_account             route       (a decision: auto_settle or hold_for_review)
//!   (once per account,        /     \
//!    two at a time)          /       \
//!        \------- auto_settle     hold_for_review
//!                          \     /       |
//!                           report    notify_finance   (only when held)
//! ```
//!
//! `verify_account` runs once per payout account of the merchant (a
//! fan-out: each account its own step with its own retries, at most two
//! at once), and `auto_settle` receives them all, in order.
//! `reconcile` works through the ledger in chunks and saves its progress
//! after each: a worker that crashes or times out mid-way is followed by
//! an attempt that resumes at the last checkpoint. `route` sends a payout
//! with a discrepancy to a person; the branch it does not choose ends
//! `skipped`, and `report` runs after whichever ran.

use serde::{Deserialize, Serialize};
use tasker::prelude::*;

/// The task context: one merchant's payout for one day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payout {
    /// The merchant.
    pub merchant_id: i64,
    /// The day's ledger: amounts in cents, as the ledger service would page
    /// them out.
    pub ledger_cents: Vec<i64>,
    /// What the bank says was received, in cents.
    pub bank_total_cents: i64,
    /// Ledger rows per chunk.
    pub chunk: usize,
    /// The merchant's payout accounts, which the payout is split across.
    pub accounts: Vec<String>,
}

/// A payout account, as the bank confirmed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedAccount {
    /// The account.
    pub account: String,
    /// Its share of the payout, in percent.
    pub share_percent: u8,
}

/// `reconcile`'s checkpoint and output: how far it got and the sum so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconciled {
    /// The first ledger row not yet added.
    pub next_row: usize,
    /// The sum of the rows added, in cents.
    pub ledger_total_cents: i64,
}

/// The branches of `route`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// The totals agree: pay out.
    AutoSettle,
    /// They do not: a person decides.
    HoldForReview,
}

/// What a branch did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settlement {
    /// `settled` or `held`.
    pub status: String,
    /// The amount, in cents.
    pub amount_cents: i64,
    /// Where it was paid: (account, cents); empty when held.
    pub transfers: Vec<(String, i64)>,
}

/// Reconciles a merchant's day and settles or holds the payout.
pub struct SettlePayout;

#[task_handler(namespace = "payouts", version = "1.0.0", context = Payout)]
impl SettlePayout {
    /// The merchant's payout accounts.
    #[step]
    async fn accounts(ctx: &StepContext<Payout>) -> StepResult<Vec<String>> {
        Ok(ctx.context().accounts.clone())
    }

    /// Asks the bank about one account (runs once per account, two at a
    /// time): a malformed account fails for good, and the payout with it.
    #[step(depends_on = accounts, for_each = accounts, concurrency = 2, retry_limit = 3,
           dependent_systems = ["bank"])]
    async fn verify_account(
        ctx: &StepContext<Payout>,
        accounts: String,
    ) -> StepResult<VerifiedAccount> {
        if !accounts.starts_with("acct_") {
            return Err(StepError::permanent(format!(
                "payout account `{accounts}` is not an account id (`acct_...`)"
            )));
        }
        let count = ctx.context().accounts.len().max(1);
        Ok(VerifiedAccount {
            account: accounts,
            share_percent: (100 / count) as u8,
        })
    }

    /// Adds up the day's ledger chunk by chunk, resuming at its checkpoint.
    #[step(timeout = "5m", retry_limit = 5)]
    async fn reconcile(ctx: &StepContext<Payout>) -> StepResult<Reconciled> {
        let payout = ctx.context();
        if payout.chunk == 0 {
            return Err(StepError::permanent("`chunk` must be at least 1"));
        }
        let mut progress: Reconciled = ctx.checkpoint().await?.unwrap_or_default();
        while let Some(rows) = payout
            .ledger_cents
            .get(progress.next_row..)
            .filter(|rest| !rest.is_empty())
        {
            let rows = &rows[..rows.len().min(payout.chunk)];
            progress.ledger_total_cents += rows.iter().sum::<i64>();
            progress.next_row += rows.len();
            ctx.save_checkpoint(&progress).await?;
        }
        Ok(progress)
    }

    /// Pays out when the ledger and the bank agree; holds otherwise.
    #[step(depends_on = reconcile, branches = [auto_settle, hold_for_review])]
    async fn route(ctx: &StepContext<Payout>, reconcile: Reconciled) -> StepResult<Route> {
        Ok(
            if reconcile.ledger_total_cents == ctx.context().bank_total_cents {
                Route::AutoSettle
            } else {
                Route::HoldForReview
            },
        )
    }

    /// Settles the payout, split across the verified accounts (the last
    /// one takes the rounding).
    #[step(depends_on = [route, reconcile, verify_account])]
    async fn auto_settle(
        reconcile: Reconciled,
        verify_account: Vec<VerifiedAccount>,
    ) -> StepResult<Settlement> {
        let total = reconcile.ledger_total_cents;
        let mut left = total;
        let mut transfers = Vec::with_capacity(verify_account.len());
        for (i, account) in verify_account.iter().enumerate() {
            let cents = if i + 1 == verify_account.len() {
                left
            } else {
                total * i64::from(account.share_percent) / 100
            };
            left -= cents;
            transfers.push((account.account.clone(), cents));
        }
        Ok(Settlement {
            status: "settled".to_owned(),
            amount_cents: total,
            transfers,
        })
    }

    /// Holds the payout for a person to look at.
    #[step(depends_on = [route, reconcile])]
    async fn hold_for_review(
        ctx: &StepContext<Payout>,
        reconcile: Reconciled,
    ) -> StepResult<Settlement> {
        Ok(Settlement {
            status: "held".to_owned(),
            amount_cents: ctx.context().bank_total_cents - reconcile.ledger_total_cents,
            transfers: Vec::new(),
        })
    }

    /// Runs only when the payout was held (skipped with it otherwise), so
    /// it takes the branch's output plainly.
    #[step(depends_on = hold_for_review, dependent_systems = ["email"])]
    async fn notify_finance(
        ctx: &StepContext<Payout>,
        hold_for_review: Settlement,
    ) -> StepResult<String> {
        Ok(format!(
            "merchant {}: payout held, {} cents unexplained",
            ctx.context().merchant_id,
            hold_for_review.amount_cents
        ))
    }

    /// Reports whichever branch ran: each may have been skipped.
    #[step(depends_on = [auto_settle, hold_for_review])]
    async fn report(
        auto_settle: Option<Settlement>,
        hold_for_review: Option<Settlement>,
    ) -> StepResult<Settlement> {
        auto_settle
            .or(hold_for_review)
            .ok_or_else(|| StepError::permanent("neither branch ran"))
    }
}

/// A sample payout of `rows` ledger rows of 100 cents, in chunks of 10,
/// to three accounts; `bank_total_cents` says what the bank received.
pub fn sample_payout(merchant_id: i64, rows: usize, bank_total_cents: i64) -> Payout {
    Payout {
        merchant_id,
        ledger_cents: vec![100; rows],
        bank_total_cents,
        chunk: 10,
        accounts: (1..=3).map(|n| format!("acct_{merchant_id}_{n}")).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tasker::testing::TaskRunner;
    use tasker::StepState;

    #[tokio::test]
    async fn agreeing_totals_settle_and_skip_the_review() {
        let run = TaskRunner::new()
            .run::<SettlePayout>(sample_payout(7, 95, 9_500))
            .await
            .unwrap();
        assert!(run.is_complete());
        let report: Settlement = run.output("report").unwrap();
        assert_eq!(report.status, "settled");
        assert_eq!(report.amount_cents, 9_500);
        // Split across the three verified accounts, in their order.
        assert_eq!(
            report.transfers,
            [
                ("acct_7_1".to_owned(), 3_135),
                ("acct_7_2".to_owned(), 3_135),
                ("acct_7_3".to_owned(), 3_230)
            ]
        );
        for skipped in ["hold_for_review", "notify_finance"] {
            assert_eq!(run.step(skipped).unwrap().state, StepState::Skipped);
        }
    }

    #[tokio::test]
    async fn a_discrepancy_is_held_and_finance_told() {
        let run = TaskRunner::new()
            .run::<SettlePayout>(sample_payout(8, 10, 1_250))
            .await
            .unwrap();
        assert!(run.is_complete());
        assert_eq!(run.step("auto_settle").unwrap().state, StepState::Skipped);
        let note: String = run.output("notify_finance").unwrap();
        assert_eq!(note, "merchant 8: payout held, 250 cents unexplained");
        assert_eq!(run.output::<Settlement>("report").unwrap().status, "held");
    }

    #[tokio::test]
    async fn a_malformed_account_fails_the_payout() {
        let mut payout = sample_payout(9, 10, 1_000);
        payout.accounts[1] = "IBAN 123".to_owned();
        let run = TaskRunner::new().run::<SettlePayout>(payout).await.unwrap();
        assert!(!run.is_complete());
        let verify = run.step("verify_account").unwrap();
        assert_eq!(verify.state, StepState::Error);
        assert_eq!(
            verify.errors[0].message(),
            "payout account `IBAN 123` is not an account id (`acct_...`)"
        );
    }

    #[tokio::test]
    async fn reconcile_resumes_at_its_checkpoint() {
        // An earlier attempt got through 40 rows.
        let ctx = StepContext::new(sample_payout(9, 95, 9_500)).with_checkpoint(Reconciled {
            next_row: 40,
            ledger_total_cents: 4_000,
        });
        let done = SettlePayout::reconcile(&ctx).await.unwrap();
        assert_eq!(
            done,
            Reconciled {
                next_row: 95,
                ledger_total_cents: 9_500
            }
        );
    }
}
