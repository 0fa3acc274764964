"""mlops-kit's LocalStack community plugin: the SageMaker and Glue parts free LocalStack lacks.

Loaded by LocalStack (Python 3.13) through the entry points in this folder's ``pyproject.toml``:

* ``entrypoints``        service providers, the start-up hook and nothing else LocalStack looks up
* ``sagemaker_provider`` training jobs (the real training contract), endpoints (the endpoint emulation),
  and moto for models, endpoint configs and the model registry
* ``runtime_provider``   InvokeEndpoint with the AWS/SageMaker metrics and data capture
* ``glue_provider``      job runs of the real Glue entry scripts
* ``cfn``                CloudFormation resource providers community LocalStack skips
* ``alarms``             evaluation of percentile and metric-math alarms (LocalStack evaluates only simple ones)
* ``workflow_metrics``   ``AWS/States`` execution metrics, Glue state-change events and ``TriggeredRules``
* ``instance_metrics``   endpoint CPU, memory and disk utilisation

Pure helpers (``capture``, ``metrics``, ``alarm_math``, ``processes``, ``glue_args``, ``settings``) import
nothing from LocalStack.
Heavy work (TensorFlow, Beam) happens only in subprocesses of the project's Python 3.11 virtualenv.
"""
