//! Segment events to Meta Pixel `fbq` calls.
//!
//! Follows segmentio/analytics.js-integrations' `facebook-pixel`: page is
//! `fbq('track', 'PageView')`; Segment's e-commerce spec events become Meta
//! standard events (`Order Completed` → `Purchase` with `content_ids`,
//! `content_type`, `contents`, `currency` (default USD), `value`,
//! `num_items`; `Product Viewed` → `ViewContent`; `Product Added` →
//! `AddToCart`; `Checkout Started` → `InitiateCheckout`; `Products Searched`
//! → `Search`); an event named in the `standardEvents` setting is tracked
//! as that standard event, any other as `trackCustom`. Properties that are
//! personal data (email, names, phone, address …) are never sent, as the
//! classic integration's default PII blacklist does, and every call carries
//! the `messageId` as `eventID`, so Meta can deduplicate it against the same
//! event from the Conversions API. The classic integration sends `value` as
//! `toFixed(2)`'s string; here it is the number rounded to cents, which Meta
//! accepts as well and which needs no number formatting.

use crate::device::{Call, Event, Value, first, round_cents, without};

/// Properties never sent to Meta (analytics.js-integrations'
/// `blacklistPiiProperties` default list).
const PII: &[&str] = &[
    "email",
    "firstName",
    "lastName",
    "gender",
    "city",
    "country",
    "phone",
    "state",
    "zip",
    "birthday",
];

/// `fbq('init', pixelId)`.
pub fn init(settings: &Value) -> Vec<Call> {
    vec![fbq(vec![
        Value::str("init"),
        Value::str(crate::device::setting(settings, "pixelId", "")),
    ])]
}

pub fn map(event: &Value, settings: &Value) -> Vec<Call> {
    let event = Event::new(event);
    let options = Value::object(vec![("eventID", crate::device::cloned(event.raw.get("messageId")))]);
    let (method, name, params) = match event.kind {
        "page" => ("track", "PageView", Value::empty()),
        "track" => {
            let p = without(&event.properties(), PII);
            match standard(&event, &p) {
                Some((name, params)) => ("track", name, params),
                None => match settings
                    .get("standardEvents")
                    .and_then(|m| m.get(event.name()))
                    .and_then(Value::as_text)
                {
                    Some(name) => ("track", name, p),
                    None => ("trackCustom", event.name(), p),
                },
            }
        }
        _ => return Vec::new(),
    };
    vec![fbq(vec![
        Value::str(method),
        Value::str(name),
        params,
        options,
    ])]
}

fn fbq(args: Vec<Value>) -> Call {
    Call::new("fbq", args)
}

/// The standard event of an e-commerce spec event, with its parameters.
fn standard(event: &Event, p: &Value) -> Option<(&'static str, Value)> {
    let currency = match first(p, &["currency"]) {
        Value::Null => Value::str("USD"),
        c => c,
    };
    let products = p.get("products").map(Value::as_array).unwrap_or_default();
    let ids = |products: &[Value]| Value::Array(products.iter().map(id).collect());
    let single = std::slice::from_ref(p);
    Some(match event.name() {
        name @ ("Order Completed" | "Checkout Started") => (
            if name == "Order Completed" {
                "Purchase"
            } else {
                "InitiateCheckout"
            },
            Value::object(vec![
                ("content_ids", ids(products)),
                ("content_type", Value::str("product")),
                ("contents", contents(products)),
                ("currency", currency),
                ("value", money(first(p, &["revenue", "total", "value"]))),
                ("num_items", Value::Number(products.len() as f64)),
            ]),
        ),
        "Product Viewed" | "Product Added" => (
            if event.name() == "Product Viewed" {
                "ViewContent"
            } else {
                "AddToCart"
            },
            Value::object(vec![
                ("content_ids", ids(single)),
                ("content_type", Value::str("product")),
                ("content_name", first(p, &["name"])),
                ("content_category", first(p, &["category"])),
                ("contents", contents(single)),
                ("currency", currency),
                ("value", money(first(p, &["value", "price"]))),
            ]),
        ),
        "Products Searched" => (
            "Search",
            Value::object(vec![("search_string", first(p, &["query"]))]),
        ),
        _ => return None,
    })
}

fn id(product: &Value) -> Value {
    first(product, &["product_id", "sku", "id"])
}

fn contents(products: &[Value]) -> Value {
    Value::Array(
        products
            .iter()
            .map(|product| {
                Value::object(vec![
                    ("id", id(product)),
                    ("quantity", first(product, &["quantity"])),
                    ("item_price", first(product, &["price"])),
                ])
            })
            .collect(),
    )
}

fn money(value: Value) -> Value {
    Value::Number(round_cents(value.as_f64().unwrap_or(0.0)))
}
