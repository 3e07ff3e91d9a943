# deepdesk-terraform: one Flux Kustomization per account, pointing at the account's folder in deepdesk-config.
terraform {
  required_providers {
    flux = {
      source = "deepdesk/flux"
    }
  }
}

variable "kubeconfig" {
  description = "Path of the kubeconfig of the cluster the accounts run in."
  type        = string
  default     = "~/.kube/config"
}

variable "environment" {
  description = "Environment the accounts belong to (a folder under k8s/flux/ in deepdesk-config)."
  type        = string
  default     = "staging"
}

variable "accounts" {
  description = "Accounts to deploy, keyed by account name; each value is the namespace its services run in."
  type        = map(string)
  default = {
    acme   = "acme"
    globex = "globex"
  }
}

provider "flux" {
  config_path = var.kubeconfig
}

resource "flux_kustomization" "account" {
  for_each = var.accounts

  name             = "account-${each.key}"
  namespace        = "flux-system"
  source           = "deepdesk-config"
  path             = "./k8s/flux/${var.environment}/${each.key}"
  interval         = "5m"
  prune            = true
  target_namespace = each.value

  post_build {
    substitute = {
      account     = each.key
      environment = var.environment
    }
  }
}

variable "slack_webhook_url" {
  description = "Slack incoming-webhook address of #deployments."
  type        = string
  sensitive   = true
  default     = "https://hooks.slack.com/services/T000/B000/XXXX"
}

# #deployments hears about every HelmRelease of the accounts (the per-account Alerts and Providers in
# deepdesk-config keep working beside it).
resource "flux_alert" "deployments" {
  name     = "deployments-${var.environment}"
  severity = "info"

  dynamic "event_source" {
    for_each = var.accounts
    content {
      kind      = "HelmRelease"
      name      = "*"
      namespace = event_source.value
    }
  }

  event_source {
    kind = "Kustomization"
    name = "*"
  }

  slack {
    channel = "#deployments"
    address = var.slack_webhook_url
  }
}

output "kustomizations" {
  description = "The Kustomization of each account, as namespace/name."
  value       = { for k, v in flux_kustomization.account : k => v.id }
}
