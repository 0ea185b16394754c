//! The Email DO's messages.

use kiln_shared::ids::AccountId;
use serde::{Deserialize, Serialize};

use super::EmailDo;

/// Claim the address for `account_id`. Answers the account that holds the claim (this
/// one, or the one of an interrupted registration); a finished claim is 409
/// `trial_exists`.
#[derive(Serialize, Deserialize)]
pub struct Claim {
    pub account_id: AccountId,
}

#[derive(Serialize, Deserialize)]
pub struct Claimed {
    pub account_id: AccountId,
}

/// The account of the claim exists: the address is taken for good.
#[derive(Serialize, Deserialize)]
pub struct Done;

#[derive(Serialize, Deserialize)]
pub struct Finished;

crate::message!(EmailDo, Claim => "/claim", Claimed);
crate::message!(EmailDo, Done => "/done", Finished);
