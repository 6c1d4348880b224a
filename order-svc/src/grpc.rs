//! `OrderService` over gRPC, for internal callers: the same use cases as HTTP, with
//! `crate::convert` doing the wire.

use std::sync::Arc;

use proto::order::v1 as pb;
use proto::order::v1::order_service_server::OrderService;
use service_runtime::telemetry::grpc_call;
use tonic::{Request, Response, Status};
use wechat_pay::{OpenId, OutTradeNo};

use crate::SERVICE;
use crate::domain::{Cursor, PageSize};
use crate::error::AppError;
use crate::orders::{OrderRef, Orders};
use crate::store::Owner;

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

fn order_ref(r: &pb::GetOrderRequest) -> Result<OrderRef, AppError> {
    if !r.order_id.is_empty() {
        let id = r.order_id.parse().map_err(|_| AppError::OrderNotFound)?;
        Ok(OrderRef::Id(id))
    } else if !r.out_trade_no.is_empty() {
        let number =
            OutTradeNo::parse(r.out_trade_no.as_str()).map_err(|_| AppError::OrderNotFound)?;
        Ok(OrderRef::Number(number))
    } else {
        Err(AppError::InvalidRequest(
            "give order_id or out_trade_no".into(),
        ))
    }
}

/// The user whose orders are listed. There is no "all users" listing here: an empty openid is
/// refused, so a caller cannot page through everyone's orders.
fn owner(openid: &str) -> Result<Owner, AppError> {
    if openid.is_empty() {
        return Err(AppError::InvalidRequest(
            "openid is required: orders are listed per user".into(),
        ));
    }
    OpenId::parse(openid)
        .map(Owner::User)
        .map_err(|e| AppError::InvalidRequest(e.to_string()))
}

#[tonic::async_trait]
impl OrderService for OrderGrpc {
    async fn get_order(
        &self,
        request: Request<pb::GetOrderRequest>,
    ) -> Result<Response<pb::Order>, Status> {
        grpc_call(SERVICE, "GetOrder", &request, async {
            let order = self.orders.find(&order_ref(request.get_ref())?).await?;
            Ok(Response::new(pb::Order::from(&order)))
        })
        .await
    }

    async fn list_orders(
        &self,
        request: Request<pb::ListOrdersRequest>,
    ) -> Result<Response<pb::ListOrdersResponse>, Status> {
        grpc_call(SERVICE, "ListOrders", &request, async {
            let r = request.get_ref();
            // proto3 has no "absent": 0 and "" mean the defaults.
            let size = PageSize::new(Some(r.limit).filter(|&l| l > 0))?;
            let cursor = Some(r.cursor.as_str())
                .filter(|c| !c.is_empty())
                .map(str::parse::<Cursor>)
                .transpose()
                .map_err(AppError::from)?;
            let page = self.orders.list(&owner(&r.openid)?, size, cursor).await?;
            Ok(Response::new(pb::ListOrdersResponse {
                orders: page.orders.iter().map(pb::Order::from).collect(),
                next_cursor: page.next_cursor.map(|c| c.to_string()).unwrap_or_default(),
            }))
        })
        .await
    }
}
