"""Local mode: LocalStack community as a host process, the kit's plugin, and deploying the CDK app into it.

Modules:
    layout   where everything lives under ``.localstack/`` and how LocalStack is addressed
    install  the Python 3.13 virtualenv with the pinned LocalStack and the kit's plugin
    control  start, stop and inspect the LocalStack process (``mlkit local up|down|status|logs``)
    clients  boto3 clients for the running LocalStack (through ``localstack-client``)
    deploy   ``cdk bootstrap`` + ``cdk deploy`` of stage ``local`` and the post-deploy resource check
    cli      the ``mlkit local`` command group

Nothing here imports LocalStack itself: LocalStack runs on Python 3.13 in its own virtualenv, while this
package runs in the project's Python 3.11 one.
"""
