output "gateway_api_url" {
  description = "gateway-api's HTTPS address (clients, operators)."
  value       = module.client_facing["gateway-api"].uri
}

output "capi_relay_url" {
  description = "capi-relay's HTTPS address (websites and CRMs send conversions here)."
  value       = module.client_facing["capi-relay"].uri
}

output "ml_service_url" {
  description = "ml-service's internal HTTPS address (reachable only from inside the project's network)."
  value       = module.ml_service.uri
}

output "database_private_ip" {
  description = "Cloud SQL's private address."
  value       = google_sql_database_instance.adloop.private_ip_address
}

output "service_accounts" {
  description = "The service account of each service."
  value       = { for name, account in google_service_account.service : name => account.email }
}
