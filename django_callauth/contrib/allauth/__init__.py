"""The bridge to django-allauth: a login by call runs allauth's login pipeline (MFA included).

Add ``"django_callauth.contrib.allauth"`` to ``INSTALLED_APPS`` after allauth's apps and
mix :class:`~django_callauth.contrib.allauth.adapter.CallAuthPhoneAccountAdapterMixin`
into ``ACCOUNT_ADAPTER`` (docs/howto/allauth.rst).
"""
