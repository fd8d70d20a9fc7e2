//! `mock-api`'s stand-ins for the vendors' cloud APIs (`/cloud/{vendor}/`),
//! checked as data: each vendor's success answers and documented failures
//! (`cases`), its failure switch (429 with `Retry-After`, 503 for a few
//! requests, slow, a dropped connection, a switch until reset), the
//! recorder and the dedupe view. The vendors are those with a cloud
//! forwarder in the registry.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use Expect::{Empty, Has, Json, Text};
use anyhow::{Context, Result, bail, ensure};
use base64::Engine;
use serde_json::{Value, json};
use switchyard_tests::MockApi;

/// One request to a stand-in, `path` the vendor's own.
#[derive(Clone)]
struct Call {
    method: reqwest::Method,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn post(path: &str, content_type: &str, body: impl Into<Vec<u8>>) -> Call {
    Call {
        method: reqwest::Method::POST,
        path: path.to_string(),
        headers: vec![("content-type".into(), content_type.into())],
        body: body.into(),
    }
}

const FORM: &str = "application/x-www-form-urlencoded";

fn post_json(path: &str, body: &Value) -> Call {
    post(path, "application/json", body.to_string())
}

impl Call {
    fn method(mut self, method: reqwest::Method) -> Call {
        self.method = method;
        self
    }

    fn header(mut self, name: &str, value: &str) -> Call {
        self.headers.push((name.into(), value.into()));
        self
    }

    fn basic(self, user: &str, password: &str) -> Call {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        self.header("authorization", &format!("Basic {encoded}"))
    }
}

/// What an answer's body must be.
#[derive(Clone, Debug)]
enum Expect {
    /// This JSON, key for key; `"*"` stands for any value but null.
    Json(Value),
    /// JSON holding at least these keys (`"*"` as above).
    Has(Value),
    Text(&'static str),
    Empty,
}

/// One request and the answer the vendor documents for it.
struct Case {
    vendor: &'static str,
    what: &'static str,
    call: Call,
    status: u16,
    answer: Expect,
    /// The dedupe keys of the events it delivers.
    keys: Vec<String>,
}

fn case(vendor: &'static str, what: &'static str, call: Call) -> Case {
    Case {
        vendor,
        what,
        call,
        status: 0,
        answer: Expect::Empty,
        keys: Vec::new(),
    }
}

impl Case {
    fn answers(mut self, status: u16, answer: Expect) -> Case {
        self.status = status;
        self.answer = answer;
        self
    }

    fn takes(mut self, keys: &[&str]) -> Case {
        self.keys = keys.iter().map(|k| k.to_string()).collect();
        self
    }

    /// Keys that are the JSON of the items.
    fn takes_json(mut self, items: impl IntoIterator<Item = Value>) -> Case {
        self.keys = items.into_iter().map(|i| i.to_string()).collect();
        self
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Every vendor's cases, in the order they run (Klaviyo's second import of
/// a profile updates it, Intercom's second contact conflicts). Each
/// vendor's first case is a delivery that can be repeated: the switch
/// checks send it.
fn cases() -> Vec<Case> {
    let now = now_ms();
    [
        webhook(),
        slack(),
        mixpanel(now),
        amplitude(now),
        posthog(),
        google_analytics_4(),
        facebook_conversions_api(now),
        customerio(),
        klaviyo(),
        intercom(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The site owner's endpoint takes anything; events count by messageId.
fn webhook() -> Vec<Case> {
    let event = json!({"messageId": "wh-1", "type": "track", "event": "A"});
    let batch = json!([{"messageId": "wh-2"}, {"messageId": "wh-3"}]);
    vec![
        case("webhook", "an event", post_json("/hook", &event))
            .answers(200, Text("ok"))
            .takes(&["wh-1"]),
        case(
            "webhook",
            "a batch, by PUT",
            post_json("/hooks/batch", &batch).method(reqwest::Method::PUT),
        )
        .answers(200, Text("ok"))
        .takes(&["wh-2", "wh-3"]),
    ]
}

/// Slack: text, or blocks alone; the errors are plain words. A message
/// counts by its body.
fn slack() -> Vec<Case> {
    let hook = "/services/T000/B000/XXXX";
    let text = json!({"text": "Jane did Order Completed."});
    let blocks = json!({"blocks": [{"type": "divider"}]});
    vec![
        case("slack", "a message", post_json(hook, &text))
            .answers(200, Text("ok"))
            .takes_json([text]),
        case("slack", "blocks without text", post_json(hook, &blocks))
            .answers(200, Text("ok"))
            .takes_json([blocks]),
        case("slack", "empty text", post_json(hook, &json!({"text": ""})))
            .answers(400, Text("no_text")),
        case(
            "slack",
            "malformed JSON",
            post(hook, "application/json", "{\"text\": "),
        )
        .answers(400, Text("invalid_payload")),
        case(
            "slack",
            "not a webhook URL",
            post_json("/services/T000", &json!({"text": "x"})),
        )
        .answers(404, Text("no_service")),
    ]
}

/// Mixpanel's `/import` in strict mode takes the valid events of a batch;
/// `/engage` and `/groups` answer `1` or `0` (JSON with `verbose=1`).
fn mixpanel(now: i64) -> Vec<Case> {
    let event = |id: &str, name: &str| {
        json!({"event": name, "properties": {
            "time": now, "distinct_id": "mp-user-1", "$insert_id": id, "token": "T",
        }})
    };
    let key = |id: &str, name: &str| format!("{id}/{name}/mp-user-1/{}", now / 1000);
    let import = |body: &Value| post_json("/import?strict=1", body).basic("T", "");
    let no_distinct_id = json!({"event": "E", "properties": {"time": now, "$insert_id": "mp-5"}});
    let update = json!({"$token": "T", "$distinct_id": "mp-user-1", "$set": {"plan": "pro"}});
    let group = json!({
        "$token": "T", "$group_key": "company", "$group_id": "acme", "$set": {"name": "Acme"},
    });
    let group_form = format!(
        "data={}",
        urlencode(&base64::engine::general_purpose::STANDARD.encode(json!([group]).to_string()))
    );
    let no_token = json!([{"$distinct_id": "u", "$set": {"a": 1}}]);
    vec![
        case(
            "mixpanel",
            "an import",
            import(&json!([event("mp-1", "A"), event("mp-2", "B")])),
        )
        .answers(
            200,
            Json(json!({"code": 200, "num_records_imported": 2, "status": "OK"})),
        )
        .takes(&[&key("mp-1", "A"), &key("mp-2", "B")]),
        case(
            "mixpanel",
            "an ndjson import",
            post(
                "/import?strict=1",
                "application/x-ndjson",
                format!("{}\n", event("mp-3", "C")),
            )
            .basic("T", ""),
        )
        .answers(
            200,
            Json(json!({"code": 200, "num_records_imported": 1, "status": "OK"})),
        )
        .takes(&[&key("mp-3", "C")]),
        case(
            "mixpanel",
            "an event without distinct_id",
            import(&json!([event("mp-4", "D"), no_distinct_id])),
        )
        .answers(
            400,
            Json(json!({
                "code": 400, "error": "*", "num_records_imported": 1, "status": "Bad Request",
                "failed_records": [{
                    "index": 1, "$insert_id": "mp-5", "field": "properties.distinct_id",
                    "message": "*",
                }],
            })),
        )
        .takes(&[&key("mp-4", "D")]),
        case(
            "mixpanel",
            "an import without auth",
            post_json("/import?strict=1", &json!([event("mp-6", "F")])),
        )
        .answers(401, Json(json!({"error": "*", "status": 0}))),
        case(
            "mixpanel",
            "a profile update",
            post_json("/engage?ip=0", &json!([update])),
        )
        .answers(200, Text("1"))
        .takes_json([update]),
        case(
            "mixpanel",
            "a verbose group update as a form",
            post("/groups?verbose=1", FORM, group_form),
        )
        .answers(200, Json(json!({"status": 1, "error": null})))
        .takes_json([group]),
        case(
            "mixpanel",
            "a verbose update without $token",
            post_json("/engage?verbose=1", &no_token),
        )
        .answers(200, Json(json!({"status": 0, "error": "*"}))),
        case(
            "mixpanel",
            "an update without $token",
            post_json("/engage", &no_token),
        )
        .answers(200, Text("0")),
    ]
}

/// Amplitude's HTTP V2 API: its error shape names the fields and events.
fn amplitude(now: i64) -> Vec<Case> {
    let event = |insert_id: &str, user: &str| {
        json!({
            "event_type": "Order Completed", "user_id": user, "insert_id": insert_id, "time": now,
        })
    };
    let api = |body: Value| post_json("/2/httpapi", &body);
    let too_large = || Json(json!({"code": 413, "error": "Payload too large"}));
    let big = json!({"event_type": "A", "user_id": "amp-user-1", "event_properties": {
        "blob": "x".repeat(1_100_000),
    }});
    vec![
        case(
            "amplitude",
            "events",
            api(json!({"api_key": "K", "events": [
                event("amp-1", "amp-user-1"), event("amp-2", "amp-user-1"),
            ]})),
        )
        .answers(
            200,
            Json(json!({
                "code": 200, "events_ingested": 2, "payload_size_bytes": "*",
                "server_upload_time": "*",
            })),
        )
        .takes(&["amp-1", "amp-2"]),
        case(
            "amplitude",
            "no api_key",
            api(json!({"events": [event("amp-3", "amp-user-1")]})),
        )
        .answers(
            400,
            Json(json!({
                "code": 400, "error": "Request missing required field", "missing_field": "api_key",
            })),
        ),
        case(
            "amplitude",
            "an event without user_id or device_id",
            api(json!({"api_key": "K", "events": [{"event_type": "A", "insert_id": "amp-4"}]})),
        )
        .answers(
            400,
            Json(json!({
                "code": 400, "error": "Request missing required field",
                "events_with_missing_fields": {"user_id": [0], "device_id": [0]},
            })),
        ),
        case(
            "amplitude",
            "a user_id shorter than min_id_length",
            api(json!({"api_key": "K", "events": [event("amp-5", "u1")]})),
        )
        .answers(
            400,
            Json(json!({
                "code": 400, "error": "*", "events_with_invalid_id_lengths": {"user_id": [0]},
            })),
        ),
        case(
            "amplitude",
            "2001 events",
            api(json!({"api_key": "K", "events": vec![event("amp-6", "amp-user-1"); 2001]})),
        )
        .answers(413, too_large()),
        case(
            "amplitude",
            "over 1 MB",
            api(json!({"api_key": "K", "events": [big]})),
        )
        .answers(413, too_large()),
    ]
}

/// PostHog's batch API, with and without the trailing slash.
fn posthog() -> Vec<Case> {
    let uuid = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
    let event = json!({
        "event": "Order Completed", "distinct_id": "ph-user-1", "uuid": uuid,
        "properties": {"revenue": 42.5},
    });
    let error = |kind: &str, code: &str| {
        Json(json!({"type": kind, "code": code, "detail": "*", "attr": null}))
    };
    vec![
        case(
            "posthog",
            "a batch",
            post_json("/batch/", &json!({"api_key": "phc_test", "batch": [event]})),
        )
        .answers(200, Json(json!({"status": 1})))
        .takes(&[uuid]),
        case(
            "posthog",
            "a batch at /batch",
            post_json(
                "/batch",
                &json!({"api_key": "phc_test", "batch": [
                    {"event": "A", "distinct_id": "ph-user-2", "uuid": "ph-2"},
                ]}),
            ),
        )
        .answers(200, Json(json!({"status": 1})))
        .takes(&["ph-2"]),
        case(
            "posthog",
            "no api_key",
            post_json("/batch/", &json!({"batch": [event]})),
        )
        .answers(401, error("authentication_error", "invalid_api_key")),
        case(
            "posthog",
            "an event without distinct_id",
            post_json(
                "/batch/",
                &json!({"api_key": "phc_test", "batch": [{"event": "A"}]}),
            ),
        )
        .answers(400, error("validation_error", "invalid_event")),
    ]
}

/// GA4's Measurement Protocol: collect never reports a problem (it drops
/// what is invalid); the debug endpoint lists them and collects nothing.
fn google_analytics_4() -> Vec<Case> {
    let collect = "/mp/collect?measurement_id=G-TEST12345&api_secret=S";
    let debug = "/debug/mp/collect?measurement_id=G-TEST12345&api_secret=S";
    let body = json!({"client_id": "c1.1", "events": [
        {
            "name": "purchase", "params": {"value": 42.5, "currency": "USD"},
            "timestamp_micros": 1_700_000_000_000_000_i64,
        },
        {"name": "page_view", "params": {"page_location": "https://shop.example.com/"}},
    ]});
    let no_client = json!({"events": [{"name": "purchase"}]});
    let many = [
        vec![json!({"name": "session_start"})],
        vec![json!({"name": "a"}); 25],
    ]
    .concat();
    let message = |field: &str, code: &str| {
        json!({
            "fieldPath": field, "description": "*", "validationCode": code,
        })
    };
    vec![
        case(
            "google_analytics_4",
            "two events",
            post_json(collect, &body),
        )
        .answers(204, Empty)
        .takes(&["c1.1/purchase/1700000000000000", "c1.1/page_view/1"]),
        case(
            "google_analytics_4",
            "no client_id, dropped silently",
            post_json(collect, &no_client),
        )
        .answers(204, Empty),
        case(
            "google_analytics_4",
            "a valid request, debugged",
            post_json(debug, &body),
        )
        .answers(200, Json(json!({"validationMessages": []}))),
        case(
            "google_analytics_4",
            "no client_id and a bad name, debugged",
            post_json(debug, &json!({"events": [{"name": "1st-visit"}]})),
        )
        .answers(
            200,
            Json(json!({"validationMessages": [
                message("client_id", "VALUE_REQUIRED"),
                message("events[0].name", "NAME_INVALID"),
            ]})),
        ),
        case(
            "google_analytics_4",
            "26 events and a reserved name, debugged",
            post_json(debug, &json!({"client_id": "c1.1", "events": many})),
        )
        .answers(
            200,
            Json(json!({"validationMessages": [
                message("events", "EXCEEDED_MAX_ENTITIES"),
                message("events[0].name", "NAME_RESERVED"),
            ]})),
        ),
    ]
}

/// Meta's Conversions API: one invalid event refuses the whole request.
fn facebook_conversions_api(now: i64) -> Vec<Case> {
    let event = json!({
        "event_name": "Purchase", "event_time": now / 1000, "event_id": "fb-1",
        "action_source": "website", "event_source_url": "https://shop.example.com/checkout",
        "user_data": {
            "em": ["e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"],
            "client_user_agent": "Mozilla/5.0",
        },
        "custom_data": {"value": 42.5, "currency": "USD"},
    });
    let pixel = "/v19.0/123456789012345/events";
    let events = |body: Value| post_json(&[pixel, "?access_token=EAAB"].concat(), &body);
    let received = || Json(json!({"events_received": 1, "messages": [], "fbtrace_id": "*"}));
    let invalid = |title: &str| {
        Json(json!({"error": {
            "message": "Invalid parameter", "type": "OAuthException", "code": 100,
            "is_transient": false, "error_user_title": title, "error_user_msg": "*",
            "fbtrace_id": "*",
        }}))
    };
    let form = format!(
        "access_token=EAAB&data={}",
        urlencode(&json!([with(&event, "event_id", json!("fb-2"))]).to_string())
    );
    let no_agent = with(&event, "user_data", json!({"external_id": ["ab"]}));
    vec![
        case(
            "facebook_conversions_api",
            "an event",
            events(json!({"data": [event]})),
        )
        .answers(200, received())
        .takes(&["fb-1"]),
        case(
            "facebook_conversions_api",
            "a form whose data is JSON",
            post(pixel, FORM, form),
        )
        .answers(200, received())
        .takes(&["fb-2"]),
        case(
            "facebook_conversions_api",
            "no access token",
            post_json(pixel, &json!({"data": [event]})),
        )
        .answers(
            400,
            Json(json!({"error": {
                "message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190,
                "fbtrace_id": "*",
            }})),
        ),
        case(
            "facebook_conversions_api",
            "an event without user_data",
            events(json!({"data": [without(&event, "user_data")]})),
        )
        .answers(400, invalid("Missing User Data")),
        case(
            "facebook_conversions_api",
            "event_time in milliseconds",
            events(json!({"data": [with(&event, "event_time", json!(now))]})),
        )
        .answers(400, invalid("Event Timestamp In The Future")),
        case(
            "facebook_conversions_api",
            "a website event without a user agent",
            events(json!({"data": [no_agent]})),
        )
        .answers(400, invalid("Missing User Agent")),
    ]
}

/// Customer.io's Track API, v2's batch and v1's calls, all `{}`.
fn customerio() -> Vec<Case> {
    let identify = json!({
        "type": "person", "identifiers": {"id": "cio-user-1"}, "action": "identify",
        "attributes": {"plan": "pro"},
    });
    let event = json!({
        "type": "person", "identifiers": {"id": "cio-user-1"}, "action": "event",
        "id": "01HCIO0000000000000000001", "name": "Order Completed",
        "attributes": {"revenue": 42.5},
    });
    let big = with(
        &identify,
        "attributes",
        json!({"blob": "x".repeat(520_000)}),
    );
    let signed = |call: Call| call.basic("site-0123", "key");
    let meta_error = || Json(json!({"meta": {"error": "*"}}));
    vec![
        case(
            "customerio",
            "a batch",
            signed(post_json(
                "/api/v2/batch",
                &json!({"batch": [identify, event]}),
            )),
        )
        .answers(200, Json(json!({})))
        .takes(&[&identify.to_string(), "01HCIO0000000000000000001"]),
        case(
            "customerio",
            "a batch without auth",
            post_json("/api/v2/batch", &json!({"batch": [event]})),
        )
        .answers(
            401,
            Json(json!({"meta": {"error": "Unauthorized request"}})),
        ),
        case(
            "customerio",
            "an item without identifiers",
            signed(post_json(
                "/api/v2/batch",
                &json!({"batch": [without(&event, "identifiers")]}),
            )),
        )
        .answers(
            400,
            Json(json!({"errors": [{
                "batch_index": 0, "reason": "invalid", "field": "identifiers", "message": "*",
            }]})),
        ),
        case(
            "customerio",
            "over 500 KB",
            signed(post_json("/api/v2/batch", &json!({"batch": [big]}))),
        )
        .answers(400, meta_error()),
        case(
            "customerio",
            "v1: a customer",
            signed(
                post_json(
                    "/api/v1/customers/cio-user-2",
                    &json!({"email": "b@example.com"}),
                )
                .method(reqwest::Method::PUT),
            ),
        )
        .answers(200, Json(json!({})))
        .takes_json([json!({"customer": "cio-user-2", "attributes": {"email": "b@example.com"}})]),
        case(
            "customerio",
            "v1: a customer's event",
            signed(post_json(
                "/api/v1/customers/cio-user-2/events",
                &json!({"name": "Played", "id": "01HCIO0000000000000000002"}),
            )),
        )
        .answers(200, Json(json!({})))
        .takes(&["01HCIO0000000000000000002"]),
        case(
            "customerio",
            "v1: an anonymous event",
            signed(post_json(
                "/api/v1/events",
                &json!({
                    "name": "Visited", "anonymous_id": "anon-1", "id": "01HCIO0000000000000000003",
                }),
            )),
        )
        .answers(200, Json(json!({})))
        .takes(&["01HCIO0000000000000000003"]),
        case(
            "customerio",
            "v1: an event without a name",
            signed(post_json(
                "/api/v1/events",
                &json!({"anonymous_id": "anon-1"}),
            )),
        )
        .answers(400, meta_error()),
    ]
}

/// Klaviyo's JSON:API, with its API key and a revision.
fn klaviyo() -> Vec<Case> {
    let event = json!({"data": {"type": "event", "attributes": {
        "properties": {"order_id": "o-1"},
        "metric": {"data": {"type": "metric", "attributes": {"name": "Placed Order"}}},
        "profile": {"data": {"type": "profile", "attributes": {"email": "jane@example.com"}}},
        "unique_id": "kl-1", "time": "2026-01-01T00:00:00Z", "value": 42.5,
    }}});
    let profile = json!({"type": "profile", "attributes": {
        "email": "jane@example.com", "first_name": "Jane",
    }});
    let again = json!({"type": "profile", "attributes": {
        "email": "jane@example.com", "last_name": "Doe",
    }});
    let signed = |call: Call| {
        call.header("authorization", "Klaviyo-API-Key pk_secret")
            .header("revision", "2024-10-15")
    };
    let the_profile =
        || Has(json!({"data": {"type": "profile", "id": "*", "attributes": "*", "links": "*"}}));
    let invalid = |pointer: &str| {
        Json(json!({"errors": [{
            "id": "*", "status": 400, "code": "invalid", "title": "*", "detail": "*",
            "source": {"pointer": pointer},
        }]}))
    };
    let not_json_api = json!({"event": "Placed Order", "email": "jane@example.com"});
    vec![
        case(
            "klaviyo",
            "an event",
            signed(post(
                "/api/events",
                "application/vnd.api+json",
                event.to_string(),
            )),
        )
        .answers(202, Empty)
        .takes(&["kl-1"]),
        case(
            "klaviyo",
            "a new profile",
            signed(post_json("/api/profile-import", &json!({"data": profile}))),
        )
        .answers(201, the_profile())
        .takes_json([profile]),
        case(
            "klaviyo",
            "the profile again",
            signed(post_json("/api/profile-import/", &json!({"data": again}))),
        )
        .answers(200, the_profile())
        .takes_json([again]),
        case(
            "klaviyo",
            "no API key",
            post_json("/api/events", &event).header("revision", "2024-10-15"),
        )
        .answers(
            401,
            Json(json!({"errors": [{
                "id": "*", "status": 401, "code": "not_authenticated",
                "title": "Authentication credentials were not provided.", "detail": "*",
                "source": {"pointer": "/data/"},
            }]})),
        ),
        case(
            "klaviyo",
            "no revision",
            post_json("/api/events", &event).header("authorization", "Klaviyo-API-Key pk_secret"),
        )
        .answers(400, invalid("/data/")),
        case(
            "klaviyo",
            "not JSON:API",
            signed(post_json("/api/events", &not_json_api)),
        )
        .answers(400, invalid("/data/type")),
    ]
}

/// Intercom's REST API with its access token.
fn intercom() -> Vec<Case> {
    let event = json!({
        "event_name": "Order Completed", "created_at": 1_700_000_000, "user_id": "ic-user-1",
        "metadata": {"order_id": "o-1"},
    });
    let contact = json!({
        "role": "user", "external_id": "ic-user-1", "email": "jane@example.com", "name": "Jane",
    });
    let company = json!({"company_id": "acme", "name": "Acme", "plan": "enterprise"});
    let signed = |call: Call| call.header("authorization", "Bearer ic-token");
    let errors = |code: &str| {
        Json(json!({
            "type": "error.list", "request_id": "*", "errors": [{"code": code, "message": "*"}],
        }))
    };
    vec![
        case("intercom", "an event", signed(post_json("/events", &event)))
            .answers(202, Empty)
            .takes(&["Order Completed/1700000000/ic-user-1"]),
        case(
            "intercom",
            "a contact",
            signed(post_json("/contacts", &contact)),
        )
        .answers(
            200,
            Has(json!({
                "type": "contact", "id": "*", "role": "user", "external_id": "ic-user-1",
                "email": "jane@example.com",
            })),
        )
        .takes_json([contact.clone()]),
        case(
            "intercom",
            "the same contact again",
            signed(post_json("/contacts", &contact)),
        )
        .answers(409, errors("conflict")),
        case(
            "intercom",
            "a company",
            signed(post_json("/companies", &company)),
        )
        .answers(
            200,
            Has(json!({"type": "company", "id": "*", "company_id": "acme", "name": "Acme"})),
        )
        .takes_json([company]),
        case("intercom", "no access token", post_json("/events", &event)).answers(
            401,
            Json(json!({
                "type": "error.list", "request_id": "*",
                "errors": [{"code": "unauthorized", "message": "Access Token Invalid"}],
            })),
        ),
        case(
            "intercom",
            "an event without event_name",
            signed(post_json("/events", &without(&event, "event_name"))),
        )
        .answers(400, errors("parameter_not_found")),
    ]
}

/// `value` with `key` set to `to`.
fn with(value: &Value, key: &str, to: Value) -> Value {
    let mut out = value.clone();
    out[key] = to;
    out
}

/// `value` without `key`.
fn without(value: &Value, key: &str) -> Value {
    let mut out = value.clone();
    if let Some(o) = out.as_object_mut() {
        o.remove(key);
    }
    out
}

/// Percent-encoding for a form value.
fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What each vendor answers to a request its switch throttles.
fn throttled(vendor: &str) -> Option<Expect> {
    Some(match vendor {
        "webhook" | "google_analytics_4" => Text("Too Many Requests"),
        "slack" => Text("rate_limited"),
        "mixpanel" => Json(json!({"code": 429, "error": "*", "status": "Too Many Requests"})),
        "amplitude" => Has(json!({
            "code": 429, "error": "Too many requests for some devices and users",
            "throttled_events": [0, 1],
        })),
        "posthog" => Json(json!({
            "type": "throttled_error", "code": "rate_limit_exceeded", "detail": "*", "attr": null,
        })),
        "facebook_conversions_api" => Json(json!({"error": {
            "message": "*", "type": "OAuthException", "is_transient": true, "code": 4,
            "fbtrace_id": "*",
        }})),
        "customerio" => Json(json!({"meta": {"error": "Too Many Requests"}})),
        "klaviyo" => Json(json!({"errors": [{
            "id": "*", "status": 429, "code": "throttled", "title": "Request was throttled.",
            "detail": "*", "source": {"pointer": "/data/"},
        }]})),
        "intercom" => Json(json!({
            "type": "error.list", "request_id": "*",
            "errors": [{"code": "rate_limit_exceeded", "message": "*"}],
        })),
        _ => return None,
    })
}

/// Where `actual` differs from `pattern` (`"*"` matching any value but
/// null), `exact` also refusing keys the pattern lacks.
fn differs(pattern: &Value, actual: &Value, exact: bool, at: &str) -> Option<String> {
    match (pattern, actual) {
        (Value::String(s), a) if s == "*" => a.is_null().then(|| format!("{at}: null")),
        (Value::Object(p), Value::Object(a)) => {
            if exact && let Some(extra) = a.keys().find(|k| !p.contains_key(*k)) {
                return Some(format!("{at}/{extra}: not expected"));
            }
            p.iter().find_map(|(k, v)| {
                let at = format!("{at}/{k}");
                match a.get(k) {
                    Some(got) => differs(v, got, exact, &at),
                    None => Some(format!("{at}: missing")),
                }
            })
        }
        (Value::Array(p), Value::Array(a)) if p.len() == a.len() => p
            .iter()
            .zip(a)
            .enumerate()
            .find_map(|(i, (p, a))| differs(p, a, exact, &format!("{at}/{i}"))),
        (p, a) => (p != a).then(|| format!("{at}: expected {p}, got {a}")),
    }
}

/// The answer, checked against what is expected of it.
fn check_answer(what: &str, expect: &Expect, content_type: Option<&str>, body: &str) -> Result<()> {
    let json = || -> Result<Value> {
        ensure!(
            content_type.is_some_and(|t| t.starts_with("application/json")),
            "{what}: content type {content_type:?}, not JSON"
        );
        serde_json::from_str(body).with_context(|| format!("{what}: {body:?} is not JSON"))
    };
    let problem = match expect {
        Expect::Json(pattern) => differs(pattern, &json()?, true, ""),
        Expect::Has(pattern) => differs(pattern, &json()?, false, ""),
        Expect::Text(text) => (body != *text).then(|| format!("expected {text:?}")),
        Expect::Empty => (!body.is_empty()).then(|| "expected no body".to_string()),
    };
    match problem {
        Some(problem) => bail!("{what}: {problem}; the answer was {body}"),
        None => Ok(()),
    }
}

/// The mock, and a client whose every request has a deadline.
struct Mock {
    api: MockApi,
    http: reqwest::Client,
}

/// What an answer must be: its status, `Retry-After` and body.
struct Expected<'a> {
    status: u16,
    retry_after: Option<&'a str>,
    answer: &'a Expect,
}

impl Mock {
    fn start() -> Result<Mock> {
        Ok(Mock {
            api: MockApi::start(env!("CARGO_BIN_EXE_mock-api"))?,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
        })
    }

    fn url(&self, path: &str) -> String {
        self.api.url(path)
    }

    async fn send(&self, vendor: &str, call: &Call) -> reqwest::Result<reqwest::Response> {
        let url = self.url(&["/cloud/", vendor, &call.path].concat());
        let mut request = self.http.request(call.method.clone(), url);
        for (name, value) in &call.headers {
            request = request.header(name, value);
        }
        request.body(call.body.clone()).send().await
    }

    /// Sends `call` and checks the answer.
    async fn expect(
        &self,
        vendor: &str,
        what: &str,
        call: &Call,
        expected: Expected<'_>,
    ) -> Result<()> {
        let what = format!("{vendor}, {what}");
        let r = self
            .send(vendor, call)
            .await
            .with_context(|| what.clone())?;
        let status = r.status().as_u16();
        let header = |name: &str| {
            r.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (retry_after, content_type) = (header("retry-after"), header("content-type"));
        let body = r.text().await?;
        ensure!(
            status == expected.status,
            "{what}: {status}, not {}: {body}",
            expected.status
        );
        ensure!(
            retry_after.as_deref() == expected.retry_after,
            "{what}: Retry-After {retry_after:?}, not {:?}",
            expected.retry_after
        );
        check_answer(&what, expected.answer, content_type.as_deref(), &body)
    }

    /// Sends a case's call and checks its answer.
    async fn run(&self, c: &Case) -> Result<()> {
        self.run_as(c, c.what).await
    }

    /// … named `what`.
    async fn run_as(&self, c: &Case, what: &str) -> Result<()> {
        let expected = Expected {
            status: c.status,
            retry_after: None,
            answer: &c.answer,
        };
        self.expect(c.vendor, what, &c.call, expected).await
    }

    async fn get(&self, path: &str) -> Result<Value> {
        Ok(self.http.get(self.url(path)).send().await?.json().await?)
    }

    async fn control(&self, switch: Value) -> Result<Value> {
        let r = self
            .http
            .post(self.url("/cloud/control"))
            .json(&switch)
            .send()
            .await?;
        ensure!(
            r.status() == 200,
            "POST /cloud/control {switch}: {}",
            r.status()
        );
        Ok(r.json().await?)
    }
}

/// `{"key": count}` as `/cloud/keys` shows it, for `keys`.
fn counted<'a>(keys: impl IntoIterator<Item = &'a String>) -> Value {
    let mut out: BTreeMap<&str, u64> = BTreeMap::new();
    for key in keys {
        *out.entry(key).or_default() += 1;
    }
    json!(out)
}

fn vendors(cases: &[Case]) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for c in cases {
        if !out.contains(&c.vendor) {
            out.push(c.vendor);
        }
    }
    out
}

#[tokio::test]
async fn every_vendor_answers_as_it_documents_and_counts_what_it_took() -> Result<()> {
    let mock = Mock::start()?;
    let http = &mock.http;
    let cases = cases();
    for c in &cases {
        mock.run(c).await?;
    }
    for vendor in vendors(&cases) {
        let mine: Vec<&Case> = cases.iter().filter(|c| c.vendor == vendor).collect();
        // Every request is recorded, in order, with what was answered.
        let recorded = mock
            .get(&["/cloud/requests?vendor=", vendor].concat())
            .await?;
        let statuses: Vec<u64> = recorded
            .as_array()
            .context("a list")?
            .iter()
            .filter_map(|r| r["status"].as_u64())
            .collect();
        let expected: Vec<u64> = mine.iter().map(|c| u64::from(c.status)).collect();
        assert_eq!(statuses, expected, "{vendor}: {recorded}");
        // Each event taken once, by the vendor's dedupe key; nothing of a
        // refused request.
        let keys = mock.get(&["/cloud/keys?vendor=", vendor].concat()).await?;
        assert_eq!(
            keys,
            counted(mine.iter().flat_map(|c| &c.keys)),
            "{vendor}'s keys"
        );
    }
    // Without the parameter: every vendor's, by vendor.
    let all = mock.get("/cloud/keys").await?;
    assert_eq!(all["webhook"], json!({"wh-1": 1, "wh-2": 1, "wh-3": 1}));
    let r = http.post(mock.url("/cloud/nobody/x")).send().await?;
    assert_eq!(r.status(), 404);
    Ok(())
}

#[tokio::test]
async fn requests_are_recorded_as_they_arrived_and_forgotten_on_delete() -> Result<()> {
    let mock = Mock::start()?;
    let http = &mock.http;
    let before = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64;
    let r = http
        .post(mock.url("/cloud/webhook/hooks/1?a=1&b=two"))
        .header("X-Signature", "0f1e")
        .header("Content-Type", "application/json")
        .body("{\"messageId\":\"m-1\"}")
        .send()
        .await?;
    assert_eq!(r.status(), 200);
    let r = http
        .post(mock.url("/cloud/slack/services/T/B/C"))
        .header("Content-Type", "application/json")
        .body("not json")
        .send()
        .await?;
    assert_eq!(r.status(), 400);

    let all = mock.get("/cloud/requests").await?;
    let all = all.as_array().context("a list")?;
    assert_eq!(all.len(), 2, "{all:?}");
    let hook = &all[0];
    assert_eq!(hook["vendor"], "webhook");
    assert_eq!(hook["method"], "POST");
    assert_eq!(hook["path"], "/cloud/webhook/hooks/1");
    assert_eq!(hook["endpoint"], "/hooks/1");
    assert_eq!(hook["query"], "a=1&b=two");
    assert_eq!(hook["headers"]["x-signature"], "0f1e");
    assert_eq!(hook["headers"]["content-type"], "application/json");
    assert_eq!(hook["body"], json!({"messageId": "m-1"}));
    assert_eq!(hook["status"], 200);
    assert_eq!(hook["switch"], Value::Null);
    assert!(
        hook["at_ms"].as_u64().is_some_and(|t| t >= before),
        "{hook}"
    );
    assert_eq!(all[1]["vendor"], "slack");
    assert_eq!(all[1]["body"], "not json");
    assert_eq!(all[1]["status"], 400);

    // Forgetting one vendor keeps the others, and forgets its keys.
    let r = http
        .delete(mock.url("/cloud/requests?vendor=webhook"))
        .send()
        .await?;
    assert_eq!(r.status(), 204);
    assert_eq!(mock.get("/cloud/requests?vendor=webhook").await?, json!([]));
    assert_eq!(mock.get("/cloud/keys?vendor=webhook").await?, json!({}));
    assert_eq!(
        mock.get("/cloud/requests").await?.as_array().map(Vec::len),
        Some(1)
    );
    http.delete(mock.url("/cloud/requests")).send().await?;
    assert_eq!(mock.get("/cloud/requests").await?, json!([]));
    Ok(())
}

#[tokio::test]
async fn every_vendors_switch_fails_it_as_asked_then_lets_it_recover() -> Result<()> {
    let mock = Mock::start()?;
    let http = &mock.http;
    let cases = cases();
    for vendor in vendors(&cases) {
        let ok = cases
            .iter()
            .find(|c| c.vendor == vendor)
            .context("a first case")?;
        let delivers = |what: &'static str| mock.run_as(ok, what);
        let throttled =
            throttled(vendor).with_context(|| format!("{vendor}: no 429 in `throttled`"))?;

        // 429 with Retry-After, once, in the vendor's shape; then normal.
        let shown = mock
            .control(json!({
                "vendor": vendor, "mode": "status", "status": 429, "retry_after": "2", "times": 1,
            }))
            .await?;
        assert_eq!(shown["times"], 1, "{shown}");
        let control = mock.get("/cloud/control").await?;
        assert_eq!(control[vendor]["mode"], "status", "{control}");
        assert_eq!(control[vendor]["status"], 429, "{control}");
        let expected = Expected {
            status: 429,
            retry_after: Some("2"),
            answer: &throttled,
        };
        mock.expect(vendor, "throttled", &ok.call, expected).await?;
        assert_eq!(mock.get("/cloud/control").await?, json!({}));
        delivers("after the 429").await?;

        // Down for two requests, then back.
        mock.control(json!({"vendor": vendor, "mode": "down", "times": 2}))
            .await?;
        for _ in 0..2 {
            let r = mock.send(vendor, &ok.call).await?;
            assert_eq!(r.status(), 503, "{vendor}");
        }
        delivers("after the outage").await?;

        // Slow: the normal answer, late.
        mock.control(json!({"vendor": vendor, "mode": "slow", "delay_ms": 300, "times": 1}))
            .await?;
        let started = Instant::now();
        delivers("slow").await?;
        assert!(started.elapsed() >= Duration::from_millis(300), "{vendor}");

        // A dropped connection: no answer at all.
        mock.control(json!({"vendor": vendor, "mode": "down", "drop": true, "times": 1}))
            .await?;
        let dropped = mock.send(vendor, &ok.call).await;
        assert!(dropped.is_err(), "{vendor}: {dropped:?}");
        delivers("after the dropped connection").await?;

        // Without `times`, until reset; a status other than 429 has the
        // vendor's error shape too.
        mock.control(json!({"vendor": vendor, "mode": "status", "status": 500}))
            .await?;
        for _ in 0..3 {
            let r = mock.send(vendor, &ok.call).await?;
            assert_eq!(r.status(), 500, "{vendor}");
        }
        assert_eq!(
            mock.get("/cloud/control").await?[vendor]["times"],
            Value::Null
        );
        mock.control(json!({"vendor": vendor, "mode": "ok"}))
            .await?;
        delivers("after the reset").await?;

        // What the switch answered is recorded, and not counted.
        let recorded = mock
            .get(&["/cloud/requests?vendor=", vendor].concat())
            .await?;
        let seen: Vec<(Value, Value)> = recorded
            .as_array()
            .context("a list")?
            .iter()
            .map(|r| (r["status"].clone(), r["switch"].clone()))
            .collect();
        let s = json!(ok.status);
        let expected: Vec<(Value, Value)> = [
            (json!(429), json!("status")),
            (s.clone(), Value::Null),
            (json!(503), json!("down")),
            (json!(503), json!("down")),
            (s.clone(), Value::Null),
            (s.clone(), json!("slow")),
            (Value::Null, json!("down")),
            (s.clone(), Value::Null),
            (json!(500), json!("status")),
            (json!(500), json!("status")),
            (json!(500), json!("status")),
            (s.clone(), Value::Null),
        ]
        .into();
        assert_eq!(seen, expected, "{vendor}: {recorded}");
        assert_eq!(recorded[6]["dropped"], true, "{vendor}");
        // Delivered five times: each key five times, none for the switch.
        let keys = mock.get(&["/cloud/keys?vendor=", vendor].concat()).await?;
        let five: BTreeMap<&String, u64> = ok.keys.iter().map(|k| (k, 5)).collect();
        assert_eq!(keys, json!(five), "{vendor}");
    }

    // A switch the mock cannot honour is refused.
    for bad in [
        json!({"vendor": "nobody", "mode": "down"}),
        json!({"vendor": "slack", "mode": "sideways"}),
        json!({"vendor": "slack", "mode": "status"}),
    ] {
        let r = http
            .post(mock.url("/cloud/control"))
            .json(&bad)
            .send()
            .await?;
        assert_eq!(r.status(), 400, "{bad}");
    }
    Ok(())
}

#[test]
fn every_cloud_forwarder_has_a_stand_in_with_cases() -> Result<()> {
    let catalog = switchyard_destinations::catalog()?;
    let cases = cases();
    let covered = vendors(&cases);
    for def in catalog.all() {
        if switchyard_destinations::forwarder(&def.slug).is_none() {
            continue;
        }
        let slug = def.slug.as_str();
        ensure!(
            covered.contains(&slug),
            "{slug} has a forwarder but no cases here"
        );
        ensure!(
            throttled(slug).is_some(),
            "{slug} has no 429 in `throttled`"
        );
        ensure!(
            cases
                .iter()
                .any(|c| c.vendor == slug && (200..300).contains(&c.status) && !c.keys.is_empty()),
            "{slug}: no case delivers an event"
        );
    }
    // And no case is for a vendor the catalog has no cloud mode for.
    for vendor in covered {
        let def = catalog
            .get(vendor)
            .with_context(|| format!("{vendor} is not in the catalog"))?;
        ensure!(
            def.modes
                .iter()
                .any(|m| m.mode == switchyard_catalog::Mode::Cloud),
            "{vendor} has no cloud mode"
        );
    }
    Ok(())
}
