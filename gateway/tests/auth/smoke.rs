//! The happy path: every algorithm's token verifies and yields its subject.

use gateway::auth::Algorithm;

use crate::helpers::{config, TestAuth};
use crate::support::issuer::{Issuer, DEFAULT_SUB};

#[tokio::test]
async fn a_valid_token_of_every_algorithm_is_accepted() {
    let issuer = Issuer::start().await;
    let auth = TestAuth::ready(config(&issuer)).await;
    for alg in Algorithm::ALL {
        let verified = auth
            .check(&issuer.token(alg))
            .await
            .unwrap_or_else(|err| panic!("{alg}: {err}"));
        assert_eq!(verified.user_id.as_str(), DEFAULT_SUB, "{alg}");
    }
    assert_eq!(issuer.fetches(), 1);
}
