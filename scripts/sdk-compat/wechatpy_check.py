"""Drives a running wechatpay-sim with an unchanged third-party WeChat Pay v2 SDK (Python
`wechatpy`): unified order, order query, close order, response signatures, a notification
verified by the SDK's own `parse_payment_result`, and the sandbox sign key.

    pip install wechatpy cryptography
    cargo run -p wechatpay-sim -- --listen 127.0.0.1:8090 &
    python scripts/sdk-compat/wechatpy_check.py http://127.0.0.1:8090

Not part of the test command (it needs Python packages); the Rust tests cover the same calls.
"""

import http.server
import json
import sys
import threading
import time
import urllib.request

from wechatpy.pay import WeChatPay

BASE = sys.argv[1].rstrip("/") if len(sys.argv) > 1 else "http://127.0.0.1:8090"
APPID, MCH_ID = "wxd930ea5d5a258f4f", "10000100"
KEY, SECRET = "192006250b4c09247ec02edce69f6a2d", "0123456789abcdef0123456789abcdef"

received = []


class Notify(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        received.append(body)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"<xml><return_code><![CDATA[SUCCESS]]></return_code></xml>")

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", 0), Notify)
threading.Thread(target=server.serve_forever, daemon=True).start()
notify_url = "http://127.0.0.1:%d/notify" % server.server_port

login = json.load(urllib.request.urlopen(
    BASE + "/sns/jscode2session?appid=%s&secret=%s&js_code=test-sdk.%d&grant_type=authorization_code"
    % (APPID, SECRET, time.time_ns())))
openid = login["openid"]

pay = WeChatPay(APPID, KEY, MCH_ID)
pay.API_BASE_URL = BASE + "/"
number = "SDK%d" % (time.time_ns() % 10**15)
created = pay.order.create("JSAPI", "Minipay-SDK", 123, notify_url, client_ip="127.0.0.1",
                           user_id=openid, out_trade_no=number)
assert pay.check_signature(dict(created)), "unified order answer must verify"
params = pay.jsapi.get_jsapi_params(created["prepay_id"])
print("unified order ok, prepay_id", created["prepay_id"], "paySign", params["paySign"])

again = pay.order.create("JSAPI", "Minipay-SDK", 123, notify_url, client_ip="127.0.0.1",
                         user_id=openid, out_trade_no=number)
assert again["prepay_id"] == created["prepay_id"], "re-entry must return the same prepay_id"

query = pay.order.query(out_trade_no=number)
assert query["trade_state"] == "NOTPAY" and pay.check_signature(dict(query))
urllib.request.urlopen(urllib.request.Request(BASE + "/sim/v1/orders/%s/pay" % number, method="POST"))
for _ in range(100):
    if received:
        break
    time.sleep(0.05)
result = pay.parse_payment_result(received[0])
assert result["out_trade_no"] == number and int(result["total_fee"]) == 123, result
query = pay.order.query(out_trade_no=number)
assert query["trade_state"] == "SUCCESS" and len(query["transaction_id"]) == 28
print("payment notification verified by wechatpy, query SUCCESS", query["transaction_id"])

other = number + "C"
pay.order.create("JSAPI", "Minipay-SDK", 1, notify_url, client_ip="127.0.0.1", user_id=openid, out_trade_no=other)
closed = pay.order.close(other)
assert pay.check_signature(dict(closed))
assert pay.order.query(out_trade_no=other)["trade_state"] == "CLOSED"
print("close order ok")

sandbox = WeChatPay(APPID, KEY, MCH_ID, sandbox=True)
sandbox.API_BASE_URL = BASE + "/"
sandbox.order.create("JSAPI", "Minipay-SDK", 1, notify_url, client_ip="127.0.0.1", user_id=openid,
                     out_trade_no=number + "S")
print("sandbox sign key and sandbox unified order ok")
print("wechatpy compatibility: all checks passed")
