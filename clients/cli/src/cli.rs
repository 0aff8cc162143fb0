//! The command tree of `dealersync`, as people type it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// dealersync field client: works offline, syncs with the dealersync relay when there
/// is a network.
#[derive(Debug, Parser)]
#[command(name = "dealersync", version, about, long_about = None)]
pub struct Cli {
    /// Where this device keeps its documents and login (default: the platform's data
    /// directory, e.g. ~/.local/share/dealersync).
    #[arg(long, global = true, env = "DEALERSYNC_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// The site whose document to read or write (default: your own site).
    #[arg(long, global = true, env = "DEALERSYNC_SITE", value_name = "SITE_ID")]
    pub site: Option<String>,
    /// Print data as JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Store the server and token, fetch the documents you may access, and sync them.
    Login(LoginArgs),
    /// Exchange changes with the server.
    Sync(SyncArgs),
    /// Per document: changes the server has not acknowledged, last sync, open conflicts.
    Status,
    /// Relays found on the local network (mDNS/DNS-SD `_dealersync._tcp`).
    Relays(RelaysArgs),
    /// Customers (leads) and their history.
    #[command(subcommand)]
    Customer(CustomerCommand),
    /// Customer care: follow-ups (回访), referrals (以老带新), lost reasons, areas.
    #[command(subcommand)]
    Care(CareCommand),
    /// Customers' complaints (投诉): open, hand over, resolve.
    #[command(subcommand)]
    Complaint(ComplaintCommand),
    /// Discounts above your limit: request, approve or refuse (managers), list.
    #[command(subcommand)]
    Discount(DiscountCommand),
    /// Walk-in visitors who gave no phone number.
    #[command(subcommand, name = "walk-in")]
    WalkIn(WalkInCommand),
    /// Vehicles in stock, by VIN.
    #[command(subcommand)]
    Vehicle(VehicleCommand),
    /// Parts and accessories counts.
    #[command(subcommand)]
    Parts(PartsCommand),
    /// Vehicle transfers between regions: a manager asks, head office approves or
    /// refuses, the sender dispatches, the receiver takes it in.
    #[command(subcommand)]
    Transfer(TransferCommand),
    /// Monthly demand forecasts.
    #[command(subcommand)]
    Forecast(ForecastCommand),
    /// The network's settings, kept in the network document (head office).
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Business conflicts that merging offline edits produced.
    #[command(subcommand)]
    Conflicts(ConflictsCommand),
    /// Consolidated reports over the documents this device holds.
    #[command(subcommand)]
    Report(ReportCommand),
}

/// `login` arguments.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The relay's base URL, e.g. http://127.0.0.1:3030.
    #[arg(long, env = "DEALERSYNC_SERVER")]
    pub server: String,
    /// Your access token (JWT), as printed by `dealersync-server token`.
    #[arg(long, env = "DEALERSYNC_TOKEN")]
    pub token: String,
    /// A PEM file of CA certificates to trust besides the system's (a dealer's
    /// private CA); kept for later syncs.
    #[arg(long, env = "DEALERSYNC_CA")]
    pub ca: Option<std::path::PathBuf>,
    /// Allow plain http:// to an address that is neither this machine nor a private
    /// LAN: the token then crosses the network in clear text.
    #[arg(long)]
    pub insecure: bool,
    /// Seconds to wait for the first sync.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
}

/// `sync` arguments.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Stay connected and sync changes as they happen on either side.
    #[arg(long)]
    pub watch: bool,
    /// Seconds to wait for a one-off sync to complete.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// Sync through another relay with the same login: `auto` for the closest relay of
    /// your subtree found on the local network, or its URL. `status` stays about your
    /// own server until you sync with it again.
    #[arg(long, value_name = "auto|URL")]
    pub via: Option<String>,
}

/// `relays`
#[derive(Debug, Args)]
pub struct RelaysArgs {
    /// Seconds to listen for relays.
    #[arg(long, default_value_t = 3)]
    pub wait: u64,
}

/// `customer ...`
#[derive(Debug, Subcommand)]
pub enum CustomerCommand {
    /// Enter a new customer (lead).
    Add {
        /// Full name.
        #[arg(long)]
        name: String,
        /// Phone number.
        #[arg(long)]
        phone: String,
        /// Where the lead came from: walk_in, phone, roadshow, referral, web, event.
        #[arg(long, default_value = "walk_in")]
        source: String,
        /// Model code of interest.
        #[arg(long)]
        model: Option<String>,
        /// Consultant who owns the lead (default: you).
        #[arg(long)]
        consultant: Option<String>,
    },
    /// List customers.
    List {
        /// Only customers with this status.
        #[arg(long)]
        status: Option<String>,
        /// Only customers of this consultant.
        #[arg(long)]
        consultant: Option<String>,
    },
    /// Show one customer with their history.
    Show {
        /// Customer id (a unique prefix is enough).
        id: String,
    },
    /// Change a customer's details.
    Update {
        /// Customer id (a unique prefix is enough).
        id: String,
        /// New name.
        #[arg(long)]
        name: Option<String>,
        /// New phone number.
        #[arg(long)]
        phone: Option<String>,
        /// New model of interest.
        #[arg(long)]
        model: Option<String>,
        /// New owning consultant.
        #[arg(long)]
        consultant: Option<String>,
    },
    /// Move a customer in the funnel: lead, test_drive, negotiating, ordered, delivered, lost.
    Status {
        /// Customer id (a unique prefix is enough).
        id: String,
        /// The new status.
        status: String,
    },
    /// Record something that happened: visit, call, test-drive, quote, order, delivery,
    /// complaint, follow-up, ...
    Event {
        /// Customer id (a unique prefix is enough).
        id: String,
        /// What happened.
        kind: String,
        /// Free-text note.
        #[arg(long)]
        note: Option<String>,
        /// Money involved, in yuan (e.g. 152000 or 152000.50).
        #[arg(long)]
        amount: Option<String>,
        /// The vehicle involved.
        #[arg(long)]
        vin: Option<String>,
        /// Survey score 1-5.
        #[arg(long)]
        score: Option<i64>,
        /// When it happened, China Standard Time: "2026-11-28 14:30" (default: now).
        #[arg(long)]
        at: Option<String>,
        /// For calls: inbound (the customer rang) or outbound (you rang).
        #[arg(long)]
        direction: Option<String>,
    },
}

/// `care ...`
#[derive(Debug, Subcommand)]
pub enum CareCommand {
    /// Record a follow-up call made (default: now), and plan the next one.
    FollowUp {
        /// Customer id (a unique prefix is enough).
        id: String,
        /// What was said.
        #[arg(long)]
        note: Option<String>,
        /// When the next follow-up is due (YYYY-MM-DD); none if not given.
        #[arg(long)]
        next: Option<String>,
        /// When the call was made, China Standard Time: "2026-11-28 14:30".
        #[arg(long)]
        at: Option<String>,
    },
    /// Plan a customer's next follow-up (YYYY-MM-DD), or `--clear` it.
    Schedule {
        /// Customer id (a unique prefix is enough).
        id: String,
        /// The day it is due.
        #[arg(long, required_unless_present = "clear")]
        due: Option<String>,
        /// Remove the planned follow-up.
        #[arg(long)]
        clear: bool,
    },
    /// Link a customer to the customer who referred them (以老带新).
    ReferredBy {
        /// Customer id (a unique prefix is enough).
        id: String,
        /// The referring customer's id (a unique prefix is enough).
        referrer: String,
    },
    /// Mark a customer lost, with the reason and the competitor they went to.
    Lost {
        /// Customer id (a unique prefix is enough).
        id: String,
        /// Why (price, 不急着买, ...).
        #[arg(long)]
        reason: String,
        /// The brand or dealer they bought from instead.
        #[arg(long)]
        competitor: Option<String>,
    },
    /// Where a customer lives: prefecture (地州), city (市区) or none.
    Area {
        /// Customer id (a unique prefix is enough).
        id: String,
        /// prefecture, city or none.
        area: String,
    },
}

/// `complaint ...`
#[derive(Debug, Subcommand)]
pub enum ComplaintCommand {
    /// Take down a customer's complaint.
    Open {
        /// Customer id (a unique prefix is enough).
        customer: String,
        /// What it is about.
        #[arg(long)]
        summary: String,
        /// Who handles it (default: you).
        #[arg(long)]
        owner: Option<String>,
        /// When it was received, China Standard Time (default: now).
        #[arg(long)]
        at: Option<String>,
    },
    /// Move a complaint along: --status open|in_progress|resolved, --owner, --resolution.
    Update {
        /// Complaint id (a unique prefix is enough).
        id: String,
        /// The new status.
        #[arg(long)]
        status: Option<String>,
        /// The new owner.
        #[arg(long)]
        owner: Option<String>,
        /// How it was settled (needed to resolve).
        #[arg(long)]
        resolution: Option<String>,
    },
}

/// `discount ...`
#[derive(Debug, Subcommand)]
pub enum DiscountCommand {
    /// Ask a manager for a discount on a vehicle for a customer, above your limit.
    Request {
        /// The VIN.
        vin: String,
        /// Customer id (a unique prefix is enough).
        #[arg(long)]
        customer: String,
        /// The discount in yuan, e.g. 8000.
        #[arg(long)]
        amount: String,
    },
    /// Approve the pending request (managers, up to their own limit).
    Approve {
        /// The VIN.
        vin: String,
        /// Customer id (a unique prefix is enough).
        #[arg(long)]
        customer: String,
    },
    /// Refuse the pending request (managers).
    Refuse {
        /// The VIN.
        vin: String,
        /// Customer id (a unique prefix is enough).
        #[arg(long)]
        customer: String,
    },
    /// Discount requests and decisions at this site, pending first.
    List,
}

/// `walk-in ...`
#[derive(Debug, Subcommand)]
pub enum WalkInCommand {
    /// Record a batch of visitors who gave no phone (来店批次): a visit in the KPIs.
    Add {
        /// How many people came together.
        #[arg(long, default_value_t = 1)]
        party: i64,
        /// The model they looked at.
        #[arg(long)]
        model: Option<String>,
        /// Free-text note.
        #[arg(long)]
        note: Option<String>,
        /// When they came, China Standard Time: "2026-11-28 14:30" (default: now).
        #[arg(long)]
        at: Option<String>,
    },
    /// List walk-in batches, newest first.
    List,
}

/// `vehicle ...`
#[derive(Debug, Subcommand)]
pub enum VehicleCommand {
    /// Record a vehicle arriving (or ordered / in transit) at this site.
    Receive {
        /// The 17-character VIN.
        vin: String,
        /// Model code.
        #[arg(long)]
        model: String,
        /// Trim level.
        #[arg(long, default_value = "")]
        trim: String,
        /// Exterior colour.
        #[arg(long, default_value = "")]
        colour: String,
        /// Cost in yuan (default: the catalogue's).
        #[arg(long)]
        cost: Option<String>,
        /// List price in yuan (default: the catalogue's).
        #[arg(long)]
        list_price: Option<String>,
        /// ordered, in_transit or in_stock.
        #[arg(long, default_value = "in_stock")]
        status: String,
        /// Expected arrival (YYYY-MM-DD) while ordered or in transit.
        #[arg(long)]
        eta: Option<String>,
    },
    /// List vehicles.
    List {
        /// Only vehicles with this status.
        #[arg(long)]
        status: Option<String>,
        /// Only this model.
        #[arg(long)]
        model: Option<String>,
    },
    /// Show one vehicle.
    Show {
        /// The VIN.
        vin: String,
    },
    /// Record that an ordered vehicle left the manufacturer: in transit, with an ETA.
    Ship {
        /// The VIN.
        vin: String,
        /// Expected arrival (YYYY-MM-DD).
        #[arg(long)]
        eta: Option<String>,
    },
    /// Record that an ordered or in-transit vehicle (an incoming transfer too) arrived:
    /// it enters stock now, and its days in stock count from now.
    Arrive {
        /// The VIN.
        vin: String,
    },
    /// Hold a vehicle for a customer.
    Reserve {
        /// The VIN.
        vin: String,
        /// Customer id (a unique prefix is enough).
        #[arg(long)]
        customer: String,
    },
    /// Release a reservation.
    Release {
        /// The VIN.
        vin: String,
    },
    /// Sell a vehicle: a reserved one to its customer, or one in stock to --customer.
    Sell {
        /// The VIN.
        vin: String,
        /// Customer id (a unique prefix is enough); needed when selling from stock.
        #[arg(long)]
        customer: Option<String>,
        /// The agreed price in yuan (default: the list price); recorded on the order.
        #[arg(long)]
        price: Option<String>,
        /// When it was sold, China Standard Time: "2026-11-28 14:30" (default: now).
        #[arg(long)]
        at: Option<String>,
    },
    /// Hand a sold vehicle over to its customer (records the customer's delivery).
    Deliver {
        /// The VIN.
        vin: String,
        /// When it was handed over, China Standard Time: "2026-11-28 14:30" (default: now).
        #[arg(long)]
        at: Option<String>,
    },
    /// Send a vehicle to another site.
    Transfer {
        /// The VIN.
        vin: String,
        /// The receiving site id.
        #[arg(long)]
        to: String,
    },
}

/// `transfer ...`
#[derive(Debug, Subcommand)]
pub enum TransferCommand {
    /// Ask head office to move a vehicle in stock at --site (default: yours) to a site
    /// of another region.
    Request {
        /// The VIN.
        vin: String,
        /// The receiving site.
        #[arg(long)]
        to: String,
        /// Why (head office reads it).
        #[arg(long)]
        note: Option<String>,
    },
    /// Approve a request (head office); the request is found in the site documents on
    /// this device.
    Approve {
        /// Request id (a unique prefix is enough).
        id: String,
        /// A note for the managers.
        #[arg(long)]
        note: Option<String>,
    },
    /// Refuse a request (head office), saying why.
    Refuse {
        /// Request id (a unique prefix is enough).
        id: String,
        /// The reason.
        #[arg(long)]
        note: String,
    },
    /// Let an approved vehicle leave the sending site (--site, default: yours).
    Dispatch {
        /// Request id (a unique prefix is enough).
        id: String,
    },
    /// Put an approved vehicle on the receiving site's books (--site, default:
    /// yours), in transit; `vehicle arrive` stocks it.
    Receive {
        /// Request id (a unique prefix is enough).
        id: String,
        /// Expected arrival (YYYY-MM-DD).
        #[arg(long)]
        eta: Option<String>,
    },
}

/// `parts ...`
#[derive(Debug, Subcommand)]
pub enum PartsCommand {
    /// Add to or take from a part's count (concurrent adjustments add up).
    Adjust {
        /// Part number.
        part: String,
        /// Change, e.g. 10 or -2.
        #[arg(allow_hyphen_values = true)]
        delta: i64,
    },
    /// List parts on hand.
    List,
    /// Ship parts from your distribution centre (--site) to an agent below it
    /// (配件配送): your counts go down now, the agent's when it receives them.
    Ship {
        /// The receiving site.
        #[arg(long)]
        to: String,
        /// Lines as PART=QUANTITY, e.g. OIL-F=20 WIPER=4.
        #[arg(required = true)]
        lines: Vec<String>,
        /// The waybill, free text.
        #[arg(long)]
        note: Option<String>,
    },
    /// Record that a parts shipment arrived at your site (--site): its counts go up.
    Receive {
        /// Shipment id (a unique prefix is enough).
        id: String,
    },
}

/// `forecast ...`
#[derive(Debug, Subcommand)]
pub enum ForecastCommand {
    /// Set next month's (or any month's) expected demand for a model.
    Set {
        /// Month, YYYY-MM.
        month: String,
        /// Model code.
        model: String,
        /// Units expected.
        quantity: i64,
    },
    /// Adjust a site's submitted forecast (a distribution centre's manager, with
    /// `--site` the agent): the agent's figure stays, the adjusted one counts in the
    /// roll-up.
    Adjust {
        /// Month, YYYY-MM.
        month: String,
        /// Model code.
        model: String,
        /// Units the distribution centre expects instead.
        quantity: i64,
    },
    /// Show forecasts.
    Show {
        /// Only this month (YYYY-MM).
        month: Option<String>,
    },
}

/// `network ...`
#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Set the day of the month (1-28, CST) by the end of which every site submits
    /// next month's forecast (head office; default the 25th).
    Deadline {
        /// Day of the month, 1 to 28.
        day: i64,
    },
    /// Set a site's sales channel (head office): direct (直销), general_agent (总代理),
    /// franchise_agent (特许代理), brand_store (品牌专卖), or none to clear it.
    Channel {
        /// The site's id.
        site: String,
        /// The channel, by its name or its Chinese label, or `none`.
        channel: String,
    },
}

/// `conflicts ...`
#[derive(Debug, Subcommand)]
pub enum ConflictsCommand {
    /// List open conflicts in the documents this device holds.
    List,
    /// Resolve a conflict.
    Resolve {
        /// Conflict id, as printed by `conflicts list`.
        id: String,
        /// The choice: the customer id to keep (a vehicle sold or reserved twice), the
        /// site that keeps the vehicle (a transfer), the customer id to keep (a
        /// duplicate), the quantity (a forecast), the count on hand (a part count
        /// collision), or `approved` / `refused` (head office's concurrent decisions on
        /// a transfer between regions).
        #[arg(long)]
        keep: String,
    },
}

/// Output shared by reports.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Print CSV instead of a table.
    #[arg(long)]
    pub csv: bool,
    /// Print every column in the table (by default a report with many columns shows
    /// the ones that fit an 80-120 column terminal; `--json` and `--csv` have all).
    #[arg(long)]
    pub wide: bool,
}

/// `report ...`
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Stock by model, site and status.
    Stock(ReportArgs),
    /// Forecast roll-up for a month.
    Forecast {
        /// Output format.
        #[command(flatten)]
        out: ReportArgs,
        /// Month, YYYY-MM (default: next month).
        #[arg(long)]
        month: Option<String>,
    },
    /// What to order from the manufacturer for a month.
    OrderPlan {
        /// Output format.
        #[command(flatten)]
        out: ReportArgs,
        /// Month, YYYY-MM (default: next month).
        #[arg(long)]
        month: Option<String>,
    },
    /// Who has and has not submitted a month's forecast by the deadline, per site in
    /// your subtree (or `--site`'s).
    Submissions {
        /// Output format.
        #[command(flatten)]
        out: ReportArgs,
        /// Month forecast, YYYY-MM (default: next month).
        #[arg(long)]
        month: Option<String>,
    },
    /// Transfers between regions and where each stands (pending first).
    Transfers(ReportArgs),
    /// Customers registered at two sites or more (same phone, 业务重叠), with the site
    /// whose manager settles each.
    Duplicates(ReportArgs),
    /// Follow-up calls due today or overdue, per consultant (客户回访).
    FollowUps(ReportArgs),
    /// Customer care per site: complaints, surveys, referrals, lead sources, lost
    /// reasons and competitors, areas (`--json` for the mixes and the complaint list).
    Care {
        /// Output format.
        #[command(flatten)]
        out: ReportArgs,
        /// Period: YYYY, YYYY-Qn, YYYY-MM, YYYY-Www or YYYY-MM-DD (default: this month).
        #[arg(long)]
        period: Option<String>,
    },
    /// Parts the distribution centres shipped to their agents, what arrived, what is on
    /// the way.
    Parts {
        /// Output format.
        #[command(flatten)]
        out: ReportArgs,
        /// Period: YYYY, YYYY-Qn, YYYY-MM, YYYY-Www or YYYY-MM-DD (default: this month).
        #[arg(long)]
        period: Option<String>,
    },
    /// Days in stock of every car on hand, oldest first; `--slow` lists only the slow
    /// movers (滞销车).
    Ageing {
        /// Output format.
        #[command(flatten)]
        out: ReportArgs,
        /// Only the slow movers.
        #[arg(long)]
        slow: bool,
        /// A car available for more than this many days is slow.
        #[arg(long, default_value_t = dealersync_core::reports::DEFAULT_SLOW_MOVER_DAYS)]
        days: u32,
    },
    /// Days of supply and capital turnover (资金周转率) per model and site.
    Turnover {
        /// Output format.
        #[command(flatten)]
        out: ReportArgs,
        /// Period: YYYY, YYYY-Qn, YYYY-MM, YYYY-Www or YYYY-MM-DD (default: last month).
        #[arg(long)]
        period: Option<String>,
    },
    /// KPIs per site and consultant against targets.
    Kpi {
        /// Output format.
        #[command(flatten)]
        out: ReportArgs,
        /// Period: YYYY, YYYY-Qn, YYYY-MM, YYYY-Www or YYYY-MM-DD (default: this month).
        #[arg(long)]
        period: Option<String>,
    },
}
