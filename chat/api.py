from ninja import NinjaAPI

api = NinjaAPI(title="koboldchat", urls_namespace="api")
