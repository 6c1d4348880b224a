//! `OrderService` over gRPC, for internal callers.

use std::sync::Arc;

use proto::order::v1 as pb;
use proto::order::v1::order_service_server::OrderService;
use service_runtime::telemetry::grpc_call;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::domain::{Order, unix_ms};
use crate::error::AppError;
use crate::orders::Orders;

const SERVICE: &str = "order-svc";

/// The gRPC face of the order use cases.
#[derive(Debug, Clone)]
pub struct OrderGrpc {
    orders: Arc<Orders>,
}

impl OrderGrpc {
    /// Over these use cases.
    pub fn new(orders: Arc<Orders>) -> Self {
        OrderGrpc { orders }
    }
}

fn to_pb(o: &Order) -> pb::Order {
    pb::Order {
        id: o.id.to_string(),
        out_trade_no: o.out_trade_no.to_string(),
        status: o.status.to_proto() as i32,
        amount_fen: o.amount.as_i64(),
        items: o
            .items
            .iter()
            .map(|i| pb::OrderItem {
                sku: i.sku.clone(),
                name: i.name.clone(),
                quantity: i.quantity,
                unit_price_fen: i.unit_price_fen.as_i64(),
            })
            .collect(),
        openid: o.openid.clone(),
        created_at_unix_ms: unix_ms(o.created_at),
        expires_at_unix_ms: unix_ms(o.expires_at),
        paid_at_unix_ms: o.paid_at.map_or(0, unix_ms),
        transaction_id: o.transaction_id.clone().unwrap_or_default(),
    }
}

#[tonic::async_trait]
impl OrderService for OrderGrpc {
    async fn get_order(
        &self,
        request: Request<pb::GetOrderRequest>,
    ) -> Result<Response<pb::Order>, Status> {
        grpc_call(SERVICE, "GetOrder", &request, async {
            let r = request.get_ref();
            let order = if !r.order_id.is_empty() {
                let id: Uuid = r.order_id.parse().map_err(|_| AppError::OrderNotFound)?;
                self.orders.store().order(id).await?
            } else if !r.out_trade_no.is_empty() {
                self.orders.store().order_by_number(&r.out_trade_no).await?
            } else {
                return Err(
                    AppError::InvalidRequest("give order_id or out_trade_no".into()).into(),
                );
            };
            Ok(Response::new(to_pb(&order.ok_or(AppError::OrderNotFound)?)))
        })
        .await
    }

    async fn list_orders(
        &self,
        request: Request<pb::ListOrdersRequest>,
    ) -> Result<Response<pb::ListOrdersResponse>, Status> {
        grpc_call(SERVICE, "ListOrders", &request, async {
            let r = request.get_ref();
            let openid = Some(r.openid.as_str()).filter(|o| !o.is_empty());
            let page = self
                .orders
                .list(openid, Some(r.limit), Some(r.cursor.as_str()))
                .await?;
            Ok(Response::new(pb::ListOrdersResponse {
                orders: page.orders.iter().map(to_pb).collect(),
                next_cursor: page.next_cursor.unwrap_or_default(),
            }))
        })
        .await
    }
}
