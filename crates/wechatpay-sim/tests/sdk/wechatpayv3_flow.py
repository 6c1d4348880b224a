"""A v3 purchase and refund with the PyPI SDK `wechatpayv3` (public-key mode), unchanged,
pointed at the simulator: prepay, the Mini Program's paySign, queries by both numbers, the
payment and refund notifications verified and decrypted by the SDK's own callback, refund and
refund query, close. Run by crates/wechatpay-sim/tests/sdk_v3.rs, which starts the simulator;
prints one JSON line of what it saw, and exits non-zero on the first surprise."""

import json
import os
import queue
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

from wechatpayv3 import WeChatPay, WeChatPayType

SIM = os.environ["SIM_URL"]
APPID = "wxd930ea5d5a258f4f"
MCHID = "10000100"
RUN = os.environ.get("RUN_ID", "1")

notifications = queue.Queue()


def check(condition, what):
    if not condition:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)


def sim_call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(SIM + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read() or b"null")


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        result = wxpay.callback(dict(self.headers.items()), body)
        notifications.put(result)
        self.send_response(204 if result else 401)
        self.end_headers()

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", 0), Receiver)
threading.Thread(target=server.serve_forever, daemon=True).start()
notify_url = f"http://127.0.0.1:{server.server_port}/notify"

with open(os.environ["MERCHANT_KEY"]) as f:
    private_key = f.read()
with open(os.environ["WECHAT_PUBLIC_KEY"]) as f:
    public_key = f.read()

wxpay = WeChatPay(
    wechatpay_type=WeChatPayType.MINIPROG,
    mchid=MCHID,
    private_key=private_key,
    cert_serial_no=os.environ["MERCHANT_SERIAL"],
    appid=APPID,
    apiv3_key=os.environ["API_V3_KEY"],
    notify_url=notify_url,
    public_key=public_key,
    public_key_id=os.environ["WECHAT_PUBLIC_KEY_ID"],
    timeout=(5, 10),
)
# The SDK's one setting for where WeChat is.
wxpay._core._gate_way = SIM

session = sim_call(
    "GET",
    f"/sns/jscode2session?appid={APPID}&secret={os.environ['APP_SECRET']}"
    f"&js_code=test-sdk-{RUN}&grant_type=authorization_code",
)
openid = session["openid"]
seen = {}

number = f"SDKV3{RUN}A"
code, message = wxpay.pay(
    description="SDK v3 test",
    out_trade_no=number,
    amount={"total": 1999, "currency": "CNY"},
    payer={"openid": openid},
)
check(code == 200, f"pay answered {code} {message}")
prepay_id = json.loads(message)["prepay_id"]
pay_sign = wxpay.sign([APPID, "1414561699", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS", f"prepay_id={prepay_id}"])
check(len(pay_sign) == 344, "paySign is RSA-2048 base64")
seen["prepay_id"] = prepay_id

code, message = wxpay.query(out_trade_no=number)
check(code == 200 and json.loads(message)["trade_state"] == "NOTPAY", f"query {code} {message}")

sim_call("POST", f"/sim/v1/orders/{number}/pay", {})
paid = notifications.get(timeout=20)
check(paid is not None, "the payment notification verified and decrypted")
check(paid["event_type"] == "TRANSACTION.SUCCESS", f"event {paid['event_type']}")
resource = paid["resource"]
check(resource["out_trade_no"] == number and resource["amount"]["total"] == 1999, f"{resource}")
transaction_id = resource["transaction_id"]
seen["transaction_id"] = transaction_id

code, message = wxpay.query(transaction_id=transaction_id)
check(code == 200 and json.loads(message)["trade_state"] == "SUCCESS", f"query by id {code} {message}")

refund_number = f"SDKV3{RUN}R"
code, message = wxpay.refund(
    out_refund_no=refund_number,
    amount={"refund": 500, "total": 1999, "currency": "CNY"},
    out_trade_no=number,
    notify_url=notify_url,
)
check(code == 200 and json.loads(message)["status"] == "PROCESSING", f"refund {code} {message}")
sim_call("POST", f"/sim/v1/refunds/{refund_number}/settle", {})
refunded = notifications.get(timeout=20)
check(refunded is not None and refunded["event_type"] == "REFUND.SUCCESS", f"{refunded}")
check(refunded["resource"]["amount"]["refund"] == 500, f"{refunded}")
code, message = wxpay.query_refund(out_refund_no=refund_number)
check(code == 200 and json.loads(message)["status"] == "SUCCESS", f"refund query {code} {message}")

unpaid = f"SDKV3{RUN}B"
code, message = wxpay.pay(
    description="SDK v3 test",
    out_trade_no=unpaid,
    amount={"total": 5},
    payer={"openid": openid},
)
check(code == 200, f"second pay {code} {message}")
code, message = wxpay.close(out_trade_no=unpaid)
check(code == 204, f"close {code} {message}")
code, message = wxpay.close(out_trade_no=unpaid)
check(code == 400 and json.loads(message)["code"] == "ORDER_CLOSED", f"close again {code} {message}")

seen["refund"] = refunded["resource"]["refund_status"]
print(json.dumps(seen))
