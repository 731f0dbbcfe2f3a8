import sys, time
sys.argv=["x"]
sys.path.insert(0, "."); exec(open("bench/bench_loyalty.py").read().split("def main()")[0].replace("Path(__file__)", "Path(\"bench/x\")"))
from loyalty.models import EarningRule
from loyalty.services.feed import loyalty_feed_consume
EarningRule.objects.update_or_create(currency="USD", defaults={"points_per_unit": 1, "active": True})
seed_orders(orders=20000, customers=4000)
times=[]
def wrapper(execute, sql_, params, many, context):
    t=time.perf_counter()
    try:
        return execute(sql_, params, many, context)
    finally:
        times.append((time.perf_counter()-t, sql_[:150].replace("\n"," ")))
with connection.execute_wrapper(wrapper):
    from customers.models import Order; from loyalty.services.earning import orders_earn; t0=time.perf_counter(); orders_earn(order_ids=list(Order.objects.values_list("id", flat=True))); print("total", time.perf_counter()-t0)
agg={}
for t,s in times:
    agg.setdefault(s,[0,0]); agg[s][0]+=t; agg[s][1]+=1
for s,(t,n) in sorted(agg.items(), key=lambda x:-x[1][0])[:8]:
    print(f"{t:.2f}s x{n} {s}")
