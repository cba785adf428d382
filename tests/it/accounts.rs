//! Merchant accounts and their keys, as an operator manages them through the
//! admin API and a merchant meets them on the API: KYC/KYB gating, account
//! status, key pairs (limit, scopes, public keys, IP allowlists, rotation).

use reqwest::Method;
use serde_json::{Value, json};
use soxara_tests::{Answer, TestApp, momo, new_key, spawn_app};

/// A new merchant at `kyc_tier`; returns its id.
async fn merchant(app: &TestApp, kyc_tier: u8) -> String {
    let made =
        app.admin(Method::POST, "/admin/merchants", Some(json!({ "name": "Kofi's shop", "kyc_tier": kyc_tier }))).await;
    assert_eq!(made.status, 201, "{:?}", made.body);
    assert_eq!(made.body["status"], "active");
    made.body["id"].as_str().unwrap().to_string()
}

async fn set(app: &TestApp, merchant_id: &str, changes: Value) -> Answer {
    app.admin(Method::PATCH, &format!("/admin/merchants/{merchant_id}"), Some(changes)).await
}

async fn make_pair(app: &TestApp, merchant_id: &str, request: Value) -> Answer {
    app.admin(Method::POST, &format!("/admin/merchants/{merchant_id}/keys"), Some(request)).await
}

/// A new pair's (secret key, public key, pair id).
fn keys_of(pair: &Answer) -> (String, String, String) {
    assert_eq!(pair.status, 201, "{:?}", pair.body);
    let text =
        |name: &str| pair.body[name].as_str().unwrap_or_else(|| panic!("no {name}: {:?}", pair.body)).to_string();
    (text("secret_key"), text("public_key"), text("id"))
}

async fn account(app: &TestApp, key: &str) -> Answer {
    app.get(key, "/v1/account").await
}

#[tokio::test]
async fn key_creation_is_gated_on_kyc_tier_and_kyb() {
    let app = spawn_app().await;
    let id = merchant(&app, 0).await;
    let refused = make_pair(&app, &id, json!({ "mode": "test" })).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (403, "KYC_TIER_INSUFFICIENT"), "{:?}", refused.body);
    assert!(refused.body["error"]["message"].as_str().unwrap().contains("Tier 2"));

    assert_eq!(set(&app, &id, json!({ "kyc_tier": 2 })).await.status, 200);
    let (test_secret, test_public, _) = keys_of(&make_pair(&app, &id, json!({ "mode": "test" })).await);
    assert!(test_secret.starts_with("sxm_test_sk_") && test_public.starts_with("sxm_test_pk_"));
    let live = make_pair(&app, &id, json!({ "mode": "live" })).await;
    assert_eq!(
        (live.status.as_u16(), live.code()),
        (403, "KYC_TIER_INSUFFICIENT"),
        "Tier 2 is not enough for live keys"
    );

    assert_eq!(set(&app, &id, json!({ "kyc_tier": 3, "kyb_status": "pending" })).await.status, 200);
    let live = make_pair(&app, &id, json!({ "mode": "live" })).await;
    assert_eq!((live.status.as_u16(), live.code()), (403, "KYB_VERIFICATION_REQUIRED"), "{:?}", live.body);

    assert_eq!(set(&app, &id, json!({ "kyb_status": "approved" })).await.status, 200);
    let (live_secret, _, _) = keys_of(&make_pair(&app, &id, json!({ "mode": "live" })).await);
    assert!(live_secret.starts_with("sxm_live_sk_"));

    // The keys work, and say whose they are.
    let seen = account(&app, &test_secret).await;
    assert_eq!(seen.status, 200, "{:?}", seen.body);
    assert_eq!(seen.body["id"], id.as_str());
    assert_eq!(seen.body["kyc_tier"], 3);
    assert_eq!(seen.body["kyb_status"], "approved");
    assert_eq!(seen.body["key"]["mode"], "test");
    assert_eq!(seen.body["key"]["kind"], "secret");
    assert_eq!(account(&app, &live_secret).await.body["key"]["mode"], "live");
    let paid = app.pay(&test_secret, Some(&new_key()), &momo(1_000, "USD", "+231770001234")).await;
    assert_eq!(paid.status, 201, "{:?}", paid.body);

    // Bad operator input is refused field by field.
    let bad = set(&app, &id, json!({ "kyc_tier": 4, "kyb_status": "maybe", "status": "gone" })).await;
    assert_eq!(bad.status, 400);
    let fields: Vec<&str> =
        bad.body["error"]["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["kyc_tier", "kyb_status", "status"]);
    assert_eq!(set(&app, "mer_nobody", json!({ "kyc_tier": 2 })).await.status, 404);
}

#[tokio::test]
async fn an_account_holds_at_most_five_key_pairs_per_mode() {
    let app = spawn_app().await;
    let id = merchant(&app, 2).await;
    let mut pairs = Vec::new();
    for _ in 0..5 {
        pairs.push(keys_of(&make_pair(&app, &id, json!({ "mode": "test" })).await));
    }
    let sixth = make_pair(&app, &id, json!({ "mode": "test" })).await;
    assert_eq!((sixth.status.as_u16(), sixth.code()), (409, "KEY_LIMIT_REACHED"), "{:?}", sixth.body);
    let revoked = app.admin(Method::DELETE, &format!("/admin/keys/{}", pairs[0].2), None).await;
    assert_eq!(revoked.status, 200, "{:?}", revoked.body);
    assert_eq!(account(&app, &pairs[0].0).await.status, 401, "a revoked key stops at once");
    keys_of(&make_pair(&app, &id, json!({ "mode": "test" })).await);
    let listed = app.admin(Method::GET, &format!("/admin/merchants/{id}"), None).await;
    let listed_pairs = listed.body["key_pairs"].as_array().unwrap();
    assert_eq!(listed_pairs.len(), 6, "five active and the revoked one");
    assert!(!listed.body.to_string().contains(&pairs[1].0), "a listing never shows a key in full");
}

#[tokio::test]
async fn suspended_and_deactivated_accounts_are_refused_at_once() {
    let app = spawn_app().await;
    let id = merchant(&app, 2).await;
    let (secret, _, _) = keys_of(&make_pair(&app, &id, json!({ "mode": "test" })).await);
    assert_eq!(account(&app, &secret).await.status, 200);

    assert_eq!(set(&app, &id, json!({ "status": "suspended" })).await.status, 200);
    let refused = app.pay(&secret, Some(&new_key()), &momo(1_000, "USD", "+231770001234")).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (403, "ACCOUNT_SUSPENDED"), "{:?}", refused.body);
    assert_eq!(app.count(&format!("SELECT count(*) FROM payments WHERE merchant_id = '{id}'")).await, 0);
    let no_key = make_pair(&app, &id, json!({ "mode": "test" })).await;
    assert_eq!(no_key.code(), "ACCOUNT_SUSPENDED");

    assert_eq!(set(&app, &id, json!({ "status": "deactivated" })).await.status, 200);
    assert_eq!(account(&app, &secret).await.code(), "ACCOUNT_DEACTIVATED");

    assert_eq!(set(&app, &id, json!({ "status": "active" })).await.status, 200);
    assert_eq!(account(&app, &secret).await.status, 200, "reactivated: the same key works again");
    // Other merchants were never affected.
    assert_eq!(account(&app, &app.key).await.status, 200);
}

/// Verification is checked on every request, not only when a key is made:
/// a KYB rejection or a KYC downgrade stops keys already issued (even ones
/// the gateway has cached), and rotation passes the same gate.
#[tokio::test]
async fn kyb_rejection_and_kyc_downgrade_stop_issued_keys_and_rotation() {
    let app = spawn_app().await;
    let id = merchant(&app, 3).await;
    assert_eq!(set(&app, &id, json!({ "kyb_status": "approved" })).await.status, 200);
    let (live, _, live_pair) = keys_of(&make_pair(&app, &id, json!({ "mode": "live" })).await);
    let (test, _, test_pair) = keys_of(&make_pair(&app, &id, json!({ "mode": "test" })).await);
    assert_eq!(account(&app, &live).await.status, 200, "used, and so cached");

    assert_eq!(set(&app, &id, json!({ "kyb_status": "rejected" })).await.status, 200);
    let refused = account(&app, &live).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (403, "KYB_VERIFICATION_REQUIRED"), "{:?}", refused.body);
    assert_eq!(account(&app, &test).await.status, 200, "test keys do not need KYB");
    let rotated = app.admin(Method::POST, &format!("/admin/keys/{live_pair}/rotate"), None).await;
    assert_eq!(rotated.code(), "KYB_VERIFICATION_REQUIRED", "rotation passes the same gate");
    assert_eq!(account(&app, &live).await.code(), "KYB_VERIFICATION_REQUIRED", "a refused rotation keeps the old keys");

    assert_eq!(set(&app, &id, json!({ "kyb_status": "approved", "kyc_tier": 2 })).await.status, 200);
    let refused = account(&app, &live).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (403, "KYC_TIER_INSUFFICIENT"), "{:?}", refused.body);
    assert_eq!(account(&app, &test).await.status, 200);

    assert_eq!(set(&app, &id, json!({ "kyc_tier": 1 })).await.status, 200);
    let paid = app.pay(&test, Some(&new_key()), &momo(1_000, "USD", "+231770001234")).await;
    assert_eq!(paid.code(), "KYC_TIER_INSUFFICIENT", "{:?}", paid.body);
    assert_eq!(app.count(&format!("SELECT count(*) FROM payments WHERE merchant_id = '{id}'")).await, 0);
    let rotated = app.admin(Method::POST, &format!("/admin/keys/{test_pair}/rotate"), None).await;
    assert_eq!(rotated.code(), "KYC_TIER_INSUFFICIENT");

    assert_eq!(set(&app, &id, json!({ "kyc_tier": 3 })).await.status, 200);
    assert_eq!(account(&app, &live).await.status, 200, "restored: the same keys work again");
    assert_eq!(account(&app, &test).await.status, 200);
}

#[tokio::test]
async fn scopes_limit_what_a_key_may_do() {
    let app = spawn_app().await;
    let id = merchant(&app, 2).await;
    let (full, _, _) = keys_of(&make_pair(&app, &id, json!({ "mode": "test" })).await);
    let (reader, _, _) =
        keys_of(&make_pair(&app, &id, json!({ "mode": "test", "scopes": ["payments:read", "account:read"] })).await);

    let refused = app.pay(&reader, Some(&new_key()), &momo(1_000, "USD", "+231770001234")).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (403, "INVALID_SCOPE"), "{:?}", refused.body);
    assert!(refused.body["error"]["message"].as_str().unwrap().contains("payments:write"));
    assert_eq!(app.count("SELECT count(*) FROM idempotency_keys").await, 0, "refused before anything is claimed");

    let paid = app.pay(&full, Some(&new_key()), &momo(1_000, "USD", "+231770001234")).await;
    let payment_id = paid.body["id"].as_str().unwrap();
    assert_eq!(app.get(&reader, &format!("/v1/payments/{payment_id}")).await.status, 200);
    let refund = app.post(&reader, "/v1/refunds", &new_key(), &json!({ "payment_id": payment_id })).await;
    assert_eq!(refund.code(), "INVALID_SCOPE");
    assert_eq!(account(&app, &reader).await.body["key"]["scopes"], json!(["account:read", "payments:read"]));

    // Every valid key may list the scopes: the seed's and ours.
    let scopes = app.get(&reader, "/v1/scopes").await;
    assert_eq!(scopes.status, 200);
    let names: Vec<&str> =
        scopes.body["data"].as_array().unwrap().iter().map(|s| s["scope"].as_str().unwrap()).collect();
    for expected in [
        "account:read",
        "wallet:read",
        "transactions:read",
        "bills:write",
        "crypto:write",
        "payments:write",
        "transfers:write",
    ] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
    let unknown = make_pair(&app, &id, json!({ "mode": "test", "scopes": ["payments:writ"] })).await;
    assert_eq!(unknown.status, 400);
    assert!(unknown.body["error"]["fields"][0]["message"].as_str().unwrap().contains("payments:writ"));
}

#[tokio::test]
async fn public_keys_reach_only_the_endpoints_that_allow_them() {
    let app = spawn_app().await;
    let id = merchant(&app, 2).await;
    let (_, public, _) = keys_of(&make_pair(&app, &id, json!({ "mode": "test" })).await);
    assert_eq!(app.get(&public, "/v1/fx/quote?from=USD&to=LRD&amount=1000").await.status, 200);
    // The account shows its KYC, KYB and the keys' allowlist: not for client apps.
    assert_eq!(account(&app, &public).await.code(), "SECRET_KEY_REQUIRED");
    let claim = json!({ "phone": "+231770001234", "code": "123456" });
    assert_eq!(app.post(&public, "/v1/claims", &new_key(), &claim).await.code(), "SECRET_KEY_REQUIRED");
    let refused = app.pay(&public, Some(&new_key()), &momo(1_000, "USD", "+231770001234")).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (403, "SECRET_KEY_REQUIRED"));
    assert_eq!(app.get(&public, "/v1/customers/+231770001234/wallets").await.code(), "SECRET_KEY_REQUIRED");
}

#[tokio::test]
async fn ip_allowlists_refuse_other_addresses() {
    let app = spawn_app().await;
    let id = merchant(&app, 2).await;
    let (elsewhere, _, _) =
        keys_of(&make_pair(&app, &id, json!({ "mode": "test", "ip_allowlist": ["203.0.113.0/24"] })).await);
    let refused = account(&app, &elsewhere).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (403, "IP_NOT_ALLOWED"), "{:?}", refused.body);
    assert!(refused.body["error"]["message"].as_str().unwrap().contains("127.0.0.1"));

    let (here, _, _) =
        keys_of(&make_pair(&app, &id, json!({ "mode": "test", "ip_allowlist": ["127.0.0.1", "::1"] })).await);
    let seen = account(&app, &here).await;
    assert_eq!(seen.status, 200, "{:?}", seen.body);
    assert_eq!(seen.body["key"]["ip_allowlist"], json!(["127.0.0.1/32", "::1/128"]));

    let bad = make_pair(&app, &id, json!({ "mode": "test", "ip_allowlist": ["localhost"] })).await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body["error"]["fields"][0]["field"], "ip_allowlist");
}

#[tokio::test]
async fn rotation_replaces_both_keys_and_the_old_ones_stop_at_once() {
    let app = spawn_app().await;
    let id = merchant(&app, 2).await;
    let (secret, public, pair_id) =
        keys_of(&make_pair(&app, &id, json!({ "mode": "test", "scopes": ["account:read", "fx:read"] })).await);
    // Used (and so cached by the gateway) before the rotation.
    assert_eq!(account(&app, &secret).await.status, 200);

    let rotated = app.admin(Method::POST, &format!("/admin/keys/{pair_id}/rotate"), None).await;
    assert_eq!(rotated.status, 200, "{:?}", rotated.body);
    let (new_secret, new_public) =
        (rotated.body["secret_key"].as_str().unwrap().to_string(), rotated.body["public_key"].as_str().unwrap());
    assert_ne!(new_secret, secret);
    assert_eq!(account(&app, &secret).await.code(), "AUTHENTICATION_FAILED", "the old secret key stops at once");
    assert_eq!(account(&app, &public).await.code(), "AUTHENTICATION_FAILED");
    let seen = account(&app, &new_secret).await;
    assert_eq!(seen.status, 200);
    assert_eq!(seen.body["key"]["pair_id"], pair_id.as_str());
    assert_eq!(seen.body["key"]["scopes"], json!(["account:read", "fx:read"]), "the pair keeps its scopes");
    assert_eq!(app.get(new_public, "/v1/fx/quote?from=USD&to=LRD&amount=1000").await.status, 200);

    let again = app.admin(Method::DELETE, &format!("/admin/keys/{pair_id}"), None).await;
    assert_eq!(again.status, 200);
    assert_eq!(account(&app, &new_secret).await.code(), "AUTHENTICATION_FAILED");
    assert_eq!(app.admin(Method::POST, &format!("/admin/keys/{pair_id}/rotate"), None).await.status, 404);
}
