//! The string enums of the documents, stored as their snake_case names.

use std::fmt;
use std::str::FromStr;

use autosurgeon::{Hydrate, HydrateError, Prop, ReadDoc, Reconcile, Reconciler};
use serde::{Deserialize, Serialize};

use super::scalar_str;

/// A string enum stored in automerge as its snake_case name.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name stored in documents and printed by the API.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownVariant;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                // Accept `test-drive` as well as `test_drive`: people type dashes.
                let norm = s.trim().to_ascii_lowercase().replace('-', "_");
                match norm.as_str() {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownVariant {
                        kind: stringify!($name),
                        found: s.to_string(),
                        expected: &[$($text),+],
                    }),
                }
            }
        }

        impl Reconcile for $name {
            type Key<'a> = autosurgeon::reconcile::NoKey;
            fn reconcile<R: Reconciler>(&self, mut reconciler: R) -> Result<(), R::Error> {
                reconciler.str(self.as_str())
            }
        }

        impl Hydrate for $name {
            fn hydrate<D: ReadDoc>(doc: &D, obj: &automerge::ObjId, prop: Prop<'_>) -> Result<Self, HydrateError> {
                let s = scalar_str::hydrate(doc, obj, prop)?;
                s.parse().map_err(|e: UnknownVariant| HydrateError::unexpected(e.expected_list(), s))
            }

            // The two below serve `Option<Self>`, which dispatches on the value's type:
            // a scalar string, or text from a client that wrote a plain JS string.
            fn hydrate_string(s: &str) -> Result<Self, HydrateError> {
                s.parse().map_err(|e: UnknownVariant| HydrateError::unexpected(e.expected_list(), s.to_string()))
            }

            fn hydrate_text<D: ReadDoc>(doc: &D, obj: &automerge::ObjId) -> Result<Self, HydrateError> {
                Self::hydrate_string(&doc.text(obj)?)
            }
        }
    };
}

/// A string that names none of an enum's variants.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {found:?}; expected one of: {}", expected.join(", "))]
pub struct UnknownVariant {
    /// The enum's name.
    pub kind: &'static str,
    /// What was given.
    pub found: String,
    /// The accepted names.
    pub expected: &'static [&'static str],
}

impl UnknownVariant {
    fn expected_list(&self) -> String {
        format!("one of {}", self.expected.join(", "))
    }
}

string_enum!(
    /// What a site is in the sales network.
    SiteKind {
        /// The 4S store's sales department.
        HeadOffice = "head_office",
        /// A regional distribution centre.
        DistributionCentre = "distribution_centre",
        /// An area, franchise or brand-store agent.
        Agent = "agent",
        /// A showroom.
        Showroom = "showroom",
        /// An outdoor or rural roadshow team.
        Roadshow = "roadshow",
    }
);

string_enum!(
    /// The sales channel a site sells through (the work plan's four channels). Reports
    /// group and label sites by it; it does not change how figures roll up the tree.
    SiteChannel {
        /// 直销: the store sells to the customer itself.
        Direct = "direct",
        /// 总代理: store → regional general agent → area and terminal agents.
        GeneralAgent = "general_agent",
        /// 特许代理: store → distribution centre → franchised area agent.
        FranchiseAgent = "franchise_agent",
        /// 品牌专卖: store → area brand store.
        BrandStore = "brand_store",
    }
);

impl SiteChannel {
    /// The name the dealer's people use, for tables.
    pub fn label_zh(self) -> &'static str {
        match self {
            SiteChannel::Direct => "直销",
            SiteChannel::GeneralAgent => "总代理",
            SiteChannel::FranchiseAgent => "特许代理",
            SiteChannel::BrandStore => "品牌专卖",
        }
    }
}

string_enum!(
    /// Where a customer lead came from.
    CustomerSource {
        /// Walked into a showroom.
        WalkIn = "walk_in",
        /// Phoned in.
        Phone = "phone",
        /// Met at an outdoor or rural roadshow.
        Roadshow = "roadshow",
        /// Referred by another customer.
        Referral = "referral",
        /// Came from the web.
        Web = "web",
        /// Met at an event (mall display, exhibition).
        Event = "event",
    }
);

string_enum!(
    /// Where a customer is in the sales funnel.
    CustomerStatus {
        /// A new lead.
        Lead = "lead",
        /// Has had a test drive.
        TestDrive = "test_drive",
        /// Negotiating price and terms.
        Negotiating = "negotiating",
        /// Has placed an order.
        Ordered = "ordered",
        /// Has taken delivery.
        Delivered = "delivered",
        /// Lost to a competitor or gone quiet.
        Lost = "lost",
    }
);

string_enum!(
    /// What happened in a customer's history.
    EventKind {
        /// A showroom or roadshow visit.
        Visit = "visit",
        /// A phone call.
        Call = "call",
        /// A test drive.
        TestDrive = "test_drive",
        /// A price quote (amount in fen).
        Quote = "quote",
        /// An order (amount in fen, VIN if allocated).
        Order = "order",
        /// A change to an order.
        OrderChange = "order_change",
        /// A discount asked for (amount in fen).
        DiscountRequest = "discount_request",
        /// A discount approved by a manager (amount in fen).
        DiscountApproved = "discount_approved",
        /// A discount request refused by a manager (amount in fen).
        DiscountRefused = "discount_refused",
        /// Delivery of the vehicle.
        Delivery = "delivery",
        /// Insurance arranged.
        Insurance = "insurance",
        /// A loan arranged.
        Loan = "loan",
        /// Number plates arranged.
        Plates = "plates",
        /// A used car taken in trade (amount in fen).
        TradeIn = "trade_in",
        /// Financing arranged.
        Financing = "financing",
        /// Accessories sold (amount in fen).
        Accessories = "accessories",
        /// A follow-up contact.
        FollowUp = "follow_up",
        /// A complaint.
        Complaint = "complaint",
        /// The customer referred someone.
        Referral = "referral",
        /// A satisfaction survey (score 1-5 in `score`).
        Survey = "survey",
    }
);

string_enum!(
    /// Who placed a call: the customer rang in, or the consultant rang out (a
    /// follow-up campaign). The plan's call volume is both; outbound calls are the ones
    /// a consultant's target asks for.
    CallDirection {
        /// The customer called the site.
        Inbound = "inbound",
        /// The consultant called the customer.
        Outbound = "outbound",
    }
);

string_enum!(
    /// Where a vehicle is in its lifecycle at a site.
    VehicleStatus {
        /// Ordered from the manufacturer.
        Ordered = "ordered",
        /// On its way to this site.
        InTransit = "in_transit",
        /// At this site, available.
        InStock = "in_stock",
        /// Held for a customer.
        Reserved = "reserved",
        /// Sold, not yet handed over.
        Sold = "sold",
        /// Handed over to the customer.
        Delivered = "delivered",
        /// Sent to another site.
        TransferredOut = "transferred_out",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_parse_and_print_snake_case() {
        assert_eq!(
            "in-stock".parse::<VehicleStatus>().unwrap(),
            VehicleStatus::InStock
        );
        assert_eq!(VehicleStatus::TransferredOut.to_string(), "transferred_out");
        let err = "sold out".parse::<VehicleStatus>().unwrap_err();
        assert!(err.to_string().contains("in_stock"), "{err}");
    }
}

string_enum!(
    /// What a sales contest (销售竞赛) ranks its teams by, over its period.
    ContestMetric {
        /// Units delivered.
        Units = "units",
        /// Revenue of the deliveries.
        Revenue = "revenue",
        /// Test drives given.
        TestDrives = "test_drives",
        /// Customer visits (walk-in batches included).
        Visits = "visits",
        /// Calls made.
        Calls = "calls",
        /// Orders taken.
        Orders = "orders",
    }
);

string_enum!(
    /// Who a sales contest's teams are made of.
    ContestMembers {
        /// Sites: a team's figure is the sum of its sites' own figures.
        Sites = "sites",
        /// Consultants (user ids): a team's figure is the sum of theirs, at any site.
        Consultants = "consultants",
    }
);
