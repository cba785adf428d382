//! Gift card sales (`/v1/gift-cards/…`): the catalogue of brands with their
//! sell rates, and sales of e-codes or physical cards (photos sent in the
//! body, base64). Reads need `gift_cards:read`, sales `gift_cards:write`
//! and an idempotency key; all need a secret key.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use base64::Engine as _;
use serde::Serialize;
use serde_json::Value;

use super::AppState;
use super::auth::Caller;
use super::extract::{ApiQuery, keyed_write_up_to, reply};
use super::fields::{Fields, Parsed, fail};
use super::listing::{Listing, PayoutRate, no_params};
use super::openapi::IdempotencyKey;
use crate::domain::card_images::sniff;
use crate::domain::scopes::Scope;
use crate::operations::gift_cards::{self, GiftCardSaleObject, NewImage, NewSale};
use crate::operations::idempotency::WriteEndpoint;
use crate::plugins::traders::CardForm as WitCardForm;
use crate::values::error::{ApiError, FieldError};
use crate::values::status::{CardForm, ObjectType};

/// The operations described here, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(catalog, sell))]
pub(super) struct Api;

/// The most photos one sale may carry, and the largest photo, in bytes.
pub const IMAGES_MAX: usize = 4;
pub const IMAGE_BYTES_MAX: usize = 2 << 20;
/// A sale's body: its photos in base64 (4 bytes per 3) and the fields.
const SALE_BODY_BYTES_MAX: usize = IMAGES_MAX * IMAGE_BYTES_MAX / 3 * 4 + (64 << 10);
/// Longest e-code (with its PIN) or note, and photo file name.
const INFO_CHARS_MAX: usize = 256;
const FILE_NAME_CHARS_MAX: usize = 128;

/// One brand the desk buys, with what it pays per country.
#[derive(Serialize, utoipa::ToSchema)]
pub struct BrandEntry {
    object: ObjectType,
    brand: String,
    name: String,
    offers: Vec<OfferEntry>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct OfferEntry {
    country: String,
    card_currency: String,
    /// Face values bought, in minor units of `card_currency`.
    denominations: Vec<u64>,
    forms: Vec<CardForm>,
    /// What one unit of face value pays, per payout currency.
    rates: Vec<PayoutRate>,
}

/// List gift card brands
///
/// The brands the desk buys in the key's mode: per country, the card's
/// currency, the face values and forms taken, and what one unit of face
/// value pays in each payout currency.
#[utoipa::path(
    get,
    path = "/v1/gift-cards/catalog",
    operation_id = "gift_card_catalog",
    tag = "Gift cards",
    responses((status = 200, description = "The brands.", body = Listing<BrandEntry>)),
    security(("api_key" = ["gift_cards:read"])),
)]
pub async fn catalog(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery,
) -> Result<axum::Json<Listing<BrandEntry>>, ApiError> {
    caller.require(Scope::GiftCardsRead)?;
    no_params(&query)?;
    let brands = gift_cards::catalog(gift_cards::trader_for(&state.ops, caller.tenant.mode)?).await?;
    let data = brands
        .into_iter()
        .map(|brand| BrandEntry {
            object: ObjectType::GiftCardBrand,
            brand: brand.slug,
            name: brand.name,
            offers: brand
                .offers
                .into_iter()
                .map(|offer| OfferEntry {
                    country: offer.country,
                    card_currency: offer.card_currency,
                    denominations: offer.denominations,
                    forms: offer
                        .forms
                        .iter()
                        .map(|f| match f {
                            WitCardForm::Ecode => CardForm::Ecode,
                            WitCardForm::Physical => CardForm::Physical,
                        })
                        .collect(),
                    rates: PayoutRate::all(offer.rates),
                })
                .collect(),
        })
        .collect();
    Ok(Listing::of(data))
}

/// Sell a gift card
///
/// Sells a card at the catalogue's rate, locked now: an e-code (its code in
/// `additional_info`) or a physical card (1 to 4 photos in `images`,
/// base64, so the body may reach about 10.7 MiB). The sale is `pending`
/// while the desk verifies the card; once verified it is `completed` and
/// the merchant's balance credited, else `cancelled`.
#[utoipa::path(
    post,
    path = "/v1/gift-cards/sales",
    operation_id = "sell_gift_card",
    tag = "Gift cards",
    params(IdempotencyKey),
    request_body = doc::SaleBody,
    responses(
        (status = 201, description = "The gift card sale.", body = GiftCardSaleObject),
    ),
    security(("api_key" = ["gift_cards:write"])),
)]
pub async fn sell(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (request, new) = keyed_write_up_to(
        &caller,
        Scope::GiftCardsWrite,
        WriteEndpoint::GiftCardSales,
        &headers,
        body,
        SALE_BODY_BYTES_MAX,
        parse_sale,
    )
    .await?;
    reply(gift_cards::sell(&state.ops, request, new).await?)
}

/// One photo: `{file_name, content_type, data}` with `data` base64, the
/// type one of JPEG, PNG, WebP and matching the bytes.
fn photo(n: usize, value: &Value, errors: &mut Vec<FieldError>) -> Option<NewImage> {
    let field = format!("images[{n}]");
    let text = |key: &str| value.get(key).and_then(Value::as_str);
    let (Some(file_name), Some(declared), Some(data)) = (text("file_name"), text("content_type"), text("data")) else {
        fail(errors, &field, "must be an object with file_name, content_type and data (base64)");
        return None;
    };
    if let Some(extra) =
        value.as_object().and_then(|o| o.keys().find(|k| !["file_name", "content_type", "data"].contains(&k.as_str())))
    {
        fail(errors, &format!("{field}.{extra}"), "is not a known field; expected file_name, content_type, data");
        return None;
    }
    let name_ok = !file_name.is_empty()
        && file_name.chars().count() <= FILE_NAME_CHARS_MAX
        && !file_name.contains(['/', '\\'])
        && !file_name.chars().any(char::is_control);
    if !name_ok {
        fail(
            errors,
            &format!("{field}.file_name"),
            format!("must be a file name of 1 to {FILE_NAME_CHARS_MAX} characters, without a path"),
        );
        return None;
    }
    if data.len() > IMAGE_BYTES_MAX / 3 * 4 + 4 {
        fail(errors, &format!("{field}.data"), format!("is over {} MiB", IMAGE_BYTES_MAX >> 20));
        return None;
    }
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(data) else {
        fail(errors, &format!("{field}.data"), "must be the photo's bytes in standard base64");
        return None;
    };
    if bytes.len() > IMAGE_BYTES_MAX {
        fail(errors, &format!("{field}.data"), format!("is over {} MiB", IMAGE_BYTES_MAX >> 20));
        return None;
    }
    let Some(content_type) = sniff(&bytes) else {
        fail(errors, &format!("{field}.data"), "is not a JPEG, PNG or WebP image");
        return None;
    };
    if declared != content_type {
        fail(errors, &format!("{field}.content_type"), format!("says {declared}, but the data is {content_type}"));
        return None;
    }
    Some(NewImage { file_name: file_name.to_string(), content_type, bytes })
}

/// A required name of the catalogue's (a brand, a country), not empty:
/// whether the catalogue buys it is `operations::gift_cards`' to say.
fn named(fields: &Fields, field: &str, chars_max: usize, errors: &mut Vec<FieldError>) -> Option<String> {
    let text = fields.string(field, chars_max, true, errors)?;
    if text.is_empty() {
        fail(errors, field, "must not be empty");
        return None;
    }
    Some(text)
}

fn parse_sale(body: &[u8]) -> Result<Parsed<NewSale>, ApiError> {
    const KNOWN: [&str; 8] =
        ["brand", "country", "form", "face_value", "card_currency", "payout_currency", "additional_info", "images"];
    let fields = Fields::parse(body, &KNOWN)?;
    let mut errors = fields.errors();
    let brand = named(&fields, "brand", 64, &mut errors).map(|b| b.to_ascii_lowercase());
    let country = named(&fields, "country", 2, &mut errors).map(|c| c.to_ascii_uppercase());
    let form = fields.string("form", 16, true, &mut errors).and_then(|f| {
        CardForm::parse(&f).or_else(|| {
            fail(&mut errors, "form", format!("must be one of {}", CardForm::words()));
            None
        })
    });
    let face_value = fields.amount_field("face_value", &mut errors);
    let card_currency = fields.currency("card_currency", &mut errors);
    let payout_currency = fields.currency("payout_currency", &mut errors);
    let additional_info = fields.string("additional_info", INFO_CHARS_MAX, false, &mut errors);
    let images: Vec<NewImage> = match fields.get("/images") {
        None => Vec::new(),
        Some(Value::Array(items)) if items.len() <= IMAGES_MAX => {
            items.iter().enumerate().filter_map(|(n, item)| photo(n, item, &mut errors)).collect()
        }
        Some(Value::Array(_)) => {
            fail(&mut errors, "images", format!("must hold at most {IMAGES_MAX} photos"));
            Vec::new()
        }
        Some(_) => {
            fail(&mut errors, "images", "must be a list of photos");
            Vec::new()
        }
    };
    match form {
        Some(CardForm::Ecode) if additional_info.as_deref().is_none_or(|i| i.trim().is_empty()) => {
            fail(&mut errors, "additional_info", "is required for an e-code: the card's code (and PIN)");
        }
        Some(CardForm::Ecode) if fields.get("/images").is_some() => {
            fail(&mut errors, "images", "are for physical cards; an e-code sends its code in additional_info");
        }
        Some(CardForm::Physical) if fields.get("/images").and_then(Value::as_array).is_none_or(Vec::is_empty) => {
            fail(&mut errors, "images", "are required for a physical card: photos of its front and back");
        }
        _ => {}
    }
    let sale = match (brand, country, form, face_value, card_currency, payout_currency) {
        (Some(brand), Some(country), Some(form), Some(face_value), Some(card_currency), Some(payout_currency)) => {
            Some(NewSale { brand, country, form, face_value, card_currency, payout_currency, additional_info, images })
        }
        _ => None,
    };
    fields.done(sale, errors)
}

/// The request bodies as the OpenAPI document shows them (read by hand
/// above, so that every bad field is reported).
#[allow(dead_code)]
mod doc {
    use crate::http::openapi::AmountMinor;
    use crate::values::money::Currency;

    const _: () = assert!(
        super::IMAGES_MAX == 4
            && super::IMAGE_BYTES_MAX == 2 << 20
            && super::INFO_CHARS_MAX == 256
            && super::FILE_NAME_CHARS_MAX == 128,
        "the sale's bodies document these limits"
    );

    /// A sale: an e-code, or a physical card with its photos.
    #[derive(utoipa::ToSchema)]
    #[serde(untagged)]
    pub enum SaleBody {
        Ecode(EcodeSaleBody),
        Physical(PhysicalSaleBody),
    }

    /// An e-code: the card's code (and PIN) in `additional_info`, no photos.
    #[derive(utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    #[schema(examples(json!({"brand": "amazon", "country": "US", "form": "ecode", "face_value": 10000, "card_currency": "USD", "payout_currency": "LRD", "additional_info": "AQ7X-99KD-MM2P-0042"})))]
    pub struct EcodeSaleBody {
        /// The brand's slug (`GET /v1/gift-cards/catalog`), any case.
        #[schema(min_length = 1, max_length = 64)]
        brand: String,
        /// The card's country as the catalogue's offer names it (ISO 3166
        /// alpha-2, any case).
        #[schema(min_length = 1, max_length = 2)]
        country: String,
        #[schema(inline)]
        form: EcodeForm,
        /// The card's face value in minor units of `card_currency`: one of
        /// the offer's denominations.
        face_value: AmountMinor,
        card_currency: Currency,
        /// What the merchant's balance is credited in.
        payout_currency: Currency,
        /// The card's code (and PIN): not blank.
        #[schema(max_length = 256, pattern = "\\S")]
        additional_info: String,
    }

    /// A physical card: photos of its front and back.
    #[derive(utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    #[schema(examples(json!({"brand": "apple", "country": "US", "form": "physical", "face_value": 5000, "card_currency": "USD", "payout_currency": "USD", "images": [{"file_name": "front.jpg", "content_type": "image/jpeg", "data": "/9j/4AAQSkZJRgABAQAAAQABAAD/2Q=="}]})))]
    pub struct PhysicalSaleBody {
        /// The brand's slug (`GET /v1/gift-cards/catalog`), any case.
        #[schema(min_length = 1, max_length = 64)]
        brand: String,
        /// The card's country as the catalogue's offer names it (ISO 3166
        /// alpha-2, any case).
        #[schema(min_length = 1, max_length = 2)]
        country: String,
        #[schema(inline)]
        form: PhysicalForm,
        /// The card's face value in minor units of `card_currency`: one of
        /// the offer's denominations.
        face_value: AmountMinor,
        card_currency: Currency,
        /// What the merchant's balance is credited in.
        payout_currency: Currency,
        /// A note for the desk.
        #[schema(max_length = 256)]
        additional_info: Option<String>,
        /// Photos of the card, front and back.
        #[schema(min_items = 1, max_items = 4)]
        images: Vec<Photo>,
    }

    #[derive(utoipa::ToSchema)]
    #[schema(rename_all = "snake_case")]
    enum EcodeForm {
        Ecode,
    }

    #[derive(utoipa::ToSchema)]
    #[schema(rename_all = "snake_case")]
    enum PhysicalForm {
        Physical,
    }

    /// A photo of a card: a JPEG, PNG or WebP image of at most 2 MiB, whose
    /// `content_type` is what its bytes are (checked from the bytes).
    #[derive(utoipa::ToSchema)]
    #[serde(untagged)]
    pub enum Photo {
        #[serde(deny_unknown_fields)]
        #[schema(title = "JpegPhoto")]
        Jpeg {
            /// A file name without a path: no `/` or `\`, no control
            /// characters.
            #[schema(min_length = 1, max_length = 128, pattern = "^[^/\\\\\\x00-\\x1f\\x7f-\\x9f]+$")]
            file_name: String,
            content_type: JpegType,
            /// In standard base64 (padded): the bytes of a JPEG (`FF D8 FF` first), at most 2 MiB decoded.
            #[schema(
                content_encoding = "base64",
                max_length = 2796204,
                pattern = "^/9j/(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$"
            )]
            data: String,
        },
        #[serde(deny_unknown_fields)]
        #[schema(title = "PngPhoto")]
        Png {
            /// A file name without a path: no `/` or `\`, no control
            /// characters.
            #[schema(min_length = 1, max_length = 128, pattern = "^[^/\\\\\\x00-\\x1f\\x7f-\\x9f]+$")]
            file_name: String,
            content_type: PngType,
            /// In standard base64 (padded): the bytes of a PNG (its 8-byte signature first), at most 2 MiB decoded.
            #[schema(
                content_encoding = "base64",
                max_length = 2796204,
                pattern = "^iVBORw0KGg(?:o=|[opqr][A-Za-z0-9+/](?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?)$"
            )]
            data: String,
        },
        #[serde(deny_unknown_fields)]
        #[schema(title = "WebpPhoto")]
        Webp {
            /// A file name without a path: no `/` or `\`, no control
            /// characters.
            #[schema(min_length = 1, max_length = 128, pattern = "^[^/\\\\\\x00-\\x1f\\x7f-\\x9f]+$")]
            file_name: String,
            content_type: WebpType,
            /// In standard base64 (padded): the bytes of a WebP (`RIFF`, a size, `WEBP` first), at most 2 MiB decoded.
            #[schema(
                content_encoding = "base64",
                max_length = 2796204,
                pattern = "^UklGR[g-v][A-Za-z0-9+/]{4}[BFJNRVZdhlptx159]XRUJQ(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$"
            )]
            data: String,
        },
    }

    #[derive(utoipa::ToSchema)]
    pub enum JpegType {
        #[serde(rename = "image/jpeg")]
        Jpeg,
    }

    #[derive(utoipa::ToSchema)]
    pub enum PngType {
        #[serde(rename = "image/png")]
        Png,
    }

    #[derive(utoipa::ToSchema)]
    pub enum WebpType {
        #[serde(rename = "image/webp")]
        Webp,
    }
}
