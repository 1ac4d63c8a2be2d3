"""The local web playground (``tracegrad serve``, docs/web.md): a page that derives gradients,
Hessians, HVPs and Jacobians as you type, over a JSON API run in a pool of worker processes.

:mod:`~rewrite.web.settings` holds a request's limits; :mod:`~rewrite.web.api` the request
handlers (pure functions, no web framework);
:mod:`~rewrite.web.workers` the process pool with its limits and deadlines;
:mod:`~rewrite.web.app` the Starlette application (the optional extra ``tracegrad[web]``).
"""
