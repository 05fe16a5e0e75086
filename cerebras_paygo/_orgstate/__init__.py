"""The organisation's shared state beyond the rate limiter: the 402 payment circuit and the spend.

- ``fallback``: what a front (``PaymentCircuit``, ``SpendMeter``, ``BudgetGuard``) does when its
  shared backend fails: warn once and use local state, or raise ``BackendUnavailableError``.
- ``redis_store``: the Redis backends (sync redis-py and ``redis.asyncio``; one Lua script per
  operation in ``lua/``, Redis ``TIME``, keys hash-tagged by the key fingerprint).

The memory backends, the readable reference, live next to their fronts in ``_payment`` and
``_billing``; ``cerebras_paygo._shared.shared_state`` builds the whole set for a client.
"""
