//! Segment events to gtag.js calls.
//!
//! Follows segmentio/action-destinations' `google-analytics-4-web`: the
//! user id is set with `gtag('set', {user_id})` before each event (as its
//! captured `dataLayer` shows), e-commerce spec events become GA4's
//! recommended events (`Order Completed` → `purchase` with `transaction_id`,
//! `value`, `currency`, `items`), other events are custom events named with
//! spaces replaced by underscores, and identify's traits become user
//! properties (`gtag('set', 'user_properties', …)`), except personal data
//! (email, names, phone …), which Google's terms forbid sending.

use crate::device::{Call, Event, NOW, Value, cloned, concat, first, scalars, setting, without};

/// Traits that are personal data, which Google's terms forbid sending to
/// Analytics: never user properties.
const PII: &[&str] = &[
    "email",
    "phone",
    "name",
    "firstName",
    "lastName",
    "username",
    "address",
    "birthday",
];

const SCRIPT_URL: &str = "https://www.googletagmanager.com/gtag/js";

/// gtag.js with the measurement id: `…/gtag/js?id=G-…`.
pub fn script_url(settings: &Value) -> String {
    concat(&[
        setting(settings, "scriptUrl", SCRIPT_URL),
        "?id=",
        setting(settings, "measurementId", ""),
    ])
}

/// `gtag('js', new Date())` and `gtag('config', id, {send_page_view})`.
pub fn init(settings: &Value) -> Vec<Call> {
    let send_page_view = settings
        .get("sendPageView")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    vec![
        gtag(vec![Value::str("js"), Value::str(NOW)]),
        gtag(vec![
            Value::str("config"),
            Value::str(setting(settings, "measurementId", "")),
            Value::object(vec![("send_page_view", Value::Bool(send_page_view))]),
        ]),
    ]
}

pub fn map(event: &Value, _settings: &Value) -> Vec<Call> {
    let event = Event::new(event);
    let mut calls = Vec::new();
    if let Some(id) = event.user_id {
        calls.push(gtag(vec![
            Value::str("set"),
            Value::object(vec![("user_id", Value::str(id))]),
        ]));
    }
    match event.kind {
        "identify" => {
            let traits = scalars(&without(&event.traits(), PII));
            if !traits.members().is_empty() {
                calls.push(gtag(vec![
                    Value::str("set"),
                    Value::str("user_properties"),
                    traits,
                ]));
            }
        }
        "track" => {
            let (name, params) = track(&event);
            calls.push(gtag(vec![Value::str("event"), Value::String(name), params]));
        }
        "page" => {
            let p = event.properties();
            let params = Value::object(vec![
                ("page_title", first(&p, &["title", "name"])),
                ("page_location", first(&p, &["url"])),
                ("page_referrer", non_empty(p.get("referrer"))),
            ]);
            calls.push(gtag(vec![Value::str("event"), Value::str("page_view"), params]));
        }
        _ => calls.clear(),
    }
    calls
}

fn gtag(args: Vec<Value>) -> Call {
    Call::new("gtag", args)
}

/// A track event's GA4 name and parameters.
fn track(event: &Event) -> (String, Value) {
    let p = event.properties();
    let recommended = match event.name() {
        "Order Completed" => "purchase",
        "Order Refunded" => "refund",
        "Checkout Started" => "begin_checkout",
        "Cart Viewed" => "view_cart",
        "Product List Viewed" => "view_item_list",
        "Product Added" => "add_to_cart",
        "Product Removed" => "remove_from_cart",
        "Product Viewed" => "view_item",
        "Product Clicked" => "select_item",
        "Product Added to Wishlist" => "add_to_wishlist",
        "Products Searched" => "search",
        "Signed Up" => "sign_up",
        "Signed In" => "login",
        _ => "",
    };
    let params = match recommended {
        "" => {
            // A custom event: its name with whitespace as underscores, its
            // flat properties as parameters (GA4 takes no nested ones).
            let name = event
                .name()
                .trim()
                .chars()
                .map(|c| if c.is_whitespace() { '_' } else { c })
                .collect();
            return (name, scalars(&p));
        }
        "search" => Value::object(vec![("search_term", first(&p, &["query"]))]),
        "sign_up" | "login" => Value::object(vec![("method", first(&p, &["type", "method"]))]),
        "view_item_list" => Value::object(vec![
            ("item_list_id", first(&p, &["list_id"])),
            ("item_list_name", first(&p, &["category"])),
            ("items", items(p.get("products"))),
        ]),
        "purchase" | "refund" | "begin_checkout" | "view_cart" => Value::object(vec![
            ("currency", first(&p, &["currency"])),
            ("transaction_id", first(&p, &["order_id"])),
            // action-destinations reads `total`; Segment's spec also allows
            // `revenue` and `value`, so they stand in when it is missing.
            ("value", first(&p, &["total", "revenue", "value"])),
            ("affiliation", first(&p, &["affiliation"])),
            ("coupon", first(&p, &["coupon"])),
            ("shipping", first(&p, &["shipping"])),
            ("tax", first(&p, &["tax"])),
            ("items", items(p.get("products"))),
        ]),
        // One product, described by the properties themselves.
        _ => Value::object(vec![
            ("currency", first(&p, &["currency"])),
            ("value", first(&p, &["value", "price"])),
            ("items", Value::Array(vec![item(&p)])),
        ]),
    };
    (recommended.into(), params)
}

fn items(products: Option<&Value>) -> Value {
    match products {
        Some(Value::Array(products)) => Value::Array(products.iter().map(item).collect()),
        _ => Value::Null,
    }
}

/// A Segment product as a GA4 item.
fn item(product: &Value) -> Value {
    Value::object(vec![
        ("item_id", first(product, &["product_id", "sku"])),
        ("item_name", first(product, &["name"])),
        ("item_brand", first(product, &["brand"])),
        ("item_category", first(product, &["category"])),
        ("item_variant", first(product, &["variant"])),
        ("coupon", first(product, &["coupon"])),
        ("index", first(product, &["position"])),
        ("price", first(product, &["price"])),
        ("quantity", first(product, &["quantity"])),
    ])
}

fn non_empty(value: Option<&Value>) -> Value {
    match value {
        Some(Value::String(s)) if s.is_empty() => Value::Null,
        v => cloned(v),
    }
}
