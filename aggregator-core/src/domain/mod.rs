//! Domain types: identifiers, quantities, money, vendors, stock, orders, holds, messages.

mod email;
mod hold;
mod ids;
mod message;
mod money;
mod order;
mod order_event_log;
mod planned;
mod quantity;
mod reservation;
mod reserving;
mod stock;
mod vendor;
mod webhook;
pub mod webhook_signature;

pub use email::Email;
pub use hold::{Hold, HoldStatus};
pub use ids::{
    CustomerId, HoldId, IdempotencyKey, MessageId, OrderId, ProductId, VendorId, VendorSku,
    WebhookId,
};
pub use message::{
    Gathered, MAX_ORDERS_PER_MESSAGE, Message, OrderMessage, OutboxMessage, QueueName, SyncRequest,
};
pub use money::{Currency, Money, QuotedPrice};
pub use order::{
    Allocation, Order, OrderDetails, OrderEvent, OrderLine, OrderStatus, ShippingAddress,
    StatusChange, Transition, VendorKey, VendorPlacement, check_free_text,
};
pub use order_event_log::{EventCursor, EventRead, LoggedOrderEvent};
pub use planned::{PlannedAllocation, PlannedLine, Reroute};
pub use quantity::{ABSOLUTE_MAX_QUANTITY, Quantity, QuantityLimit};
pub use reservation::{Reservation, ReservationOwner};
pub use reserving::{
    Demand, LockedRow, LockedRows, RerouteDecision, RowKey, check_reroute_request,
};
pub use stock::{
    MAX_REPORTED_QUANTITY, PendingConfirmation, SnapshotOutcome, SnapshotRow, StockLedger,
    VendorStock, covers,
};
pub use vendor::{HealthPolicy, StalenessLimit, Vendor, VendorHealth};
pub use webhook::{DeliveryOutcome, MAX_SECRET_LENGTH, MIN_SECRET_LENGTH, WebhookEndpoint};
