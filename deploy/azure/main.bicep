// fhirgate on Azure in one resource group deployment: Azure Container Apps running the image,
// Azure Cosmos DB for NoSQL as its store (container `resources`, partition key /pk, as
// backends/cosmos expects), a user-assigned managed identity with the Cosmos DB data-plane role
// (no keys: local auth is off), Key Vault holding the paging key the replicas share, and Log
// Analytics for the logs. deploy/README.md gives the commands (what-if, create).

@description('Region of every resource.')
param location string = resourceGroup().location

@description('Prefix of the resource names (letters and digits).')
@minLength(3)
@maxLength(12)
param namePrefix string = 'fhirgate'

@description('Entra tenant id whose tokens fhirgate accepts (issuer https://login.microsoftonline.com/<tenant>/v2.0).')
param entraTenantId string = subscription().tenantId

@description('Accepted token audiences: the API app\'s identifier URI and/or client id (deploy/azure/entra-app-roles.sh prints them).')
param audiences array

@description('The fhirgate image, e.g. myregistry.azurecr.io/fhirgate:0.1.0 (built from deploy/container).')
param image string

@description('Name of the Azure Container Registry in this resource group holding the image; the identity gets AcrPull on it.')
param registryName string

@description('Shipped policy sets to load (policies/sets).')
param policySets array = [
  'microsoft-roles'
  'smart'
]

@description('Replicas of the container app.')
@minValue(1)
param minReplicas int = 2

@description('32 characters shared by the replicas to seal page links (e.g. `openssl rand -base64 24`).')
@secure()
@minLength(32)
@maxLength(32)
param pagingKey string

var suffix = uniqueString(resourceGroup().id, namePrefix)
var cosmosDataContributor = '00000000-0000-0000-0000-000000000002'
var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'
var acrPull = '7f951dda-4ed3-4680-a7ca-43fe172d538d'

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${namePrefix}-logs-${suffix}'
  location: location
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 90
  }
}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: '${namePrefix}-id'
  location: location
}

resource cosmos 'Microsoft.DocumentDB/databaseAccounts@2024-05-15' = {
  // checkov:skip=CKV_AZURE_101: reachable from the Container Apps environment without a VNet in this quickstart; Entra ID is the only way in (disableLocalAuth). Production: a private endpoint and a VNet-integrated environment, publicNetworkAccess Disabled
  // checkov:skip=CKV_AZURE_99: same as CKV_AZURE_101: no IP filter, because Container Apps' outbound addresses are not fixed without a VNet
  name: '${namePrefix}-${suffix}'
  location: location
  kind: 'GlobalDocumentDB'
  properties: {
    databaseAccountOfferType: 'Standard'
    // Entra ID only: no account keys.
    disableLocalAuth: true
    disableKeyBasedMetadataWriteAccess: true
    minimalTlsVersion: 'Tls12'
    consistencyPolicy: { defaultConsistencyLevel: 'Session' }
    locations: [
      { locationName: location, failoverPriority: 0, isZoneRedundant: false }
    ]
    backupPolicy: {
      type: 'Continuous'
      continuousModeProperties: { tier: 'Continuous7Days' }
    }
  }
}

resource database 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases@2024-05-15' = {
  parent: cosmos
  name: 'fhir'
  properties: {
    resource: { id: 'fhir' }
  }
}

// One FHIR store is one logical partition (store.cosmos.partition, default `fhir`) of this
// container: transactions are atomic transactional batches (backends/cosmos/README.md).
resource container 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-05-15' = {
  parent: database
  name: 'resources'
  properties: {
    resource: {
      id: 'resources'
      partitionKey: {
        paths: [ '/pk' ]
        kind: 'Hash'
      }
    }
    options: {
      autoscaleSettings: { maxThroughput: 4000 }
    }
  }
}

// Data plane: read and write documents, nothing on the control plane.
resource cosmosRole 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2024-05-15' = {
  parent: cosmos
  name: guid(cosmos.id, identity.id, cosmosDataContributor)
  properties: {
    roleDefinitionId: '${cosmos.id}/sqlRoleDefinitions/${cosmosDataContributor}'
    principalId: identity.properties.principalId
    scope: cosmos.id
  }
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: Container Apps is not a trusted service that passes the Key Vault firewall; without a VNet the app must reach the vault publicly. Access is RBAC only (one role, one identity). Production: a private endpoint
  // checkov:skip=CKV_AZURE_189: as CKV_AZURE_109
  name: '${namePrefix}-kv-${take(suffix, 8)}'
  location: location
  properties: {
    tenantId: subscription().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
  }
}

resource pagingKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  // checkov:skip=CKV_AZURE_41: an expired secret cannot be read and every replica would fail at start; rotate it by deploying a new pagingKey (page links then expire, nothing else)
  parent: vault
  name: 'paging-key'
  properties: {
    value: pagingKey
    contentType: 'text/plain'
  }
}

resource vaultRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: vault
  name: guid(vault.id, identity.id, keyVaultSecretsUser)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: registryName
}

resource registryRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: registry
  name: guid(registry.id, identity.id, acrPull)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', acrPull)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource appEnvironment 'Microsoft.App/managedEnvironments@2024-03-01' = {
  name: '${namePrefix}-env'
  location: location
  properties: {
    appLogsConfiguration: {
      destination: 'log-analytics'
      logAnalyticsConfiguration: {
        customerId: logs.properties.customerId
        sharedKey: logs.listKeys().primarySharedKey
      }
    }
  }
}

var appName = '${namePrefix}-app'

resource app 'Microsoft.App/containerApps@2024-03-01' = {
  name: appName
  location: location
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identity.id}': {} }
  }
  dependsOn: [ cosmosRole, vaultRole, registryRole, container ]
  properties: {
    managedEnvironmentId: appEnvironment.id
    configuration: {
      ingress: {
        external: true
        targetPort: 8080
        transport: 'http'
        allowInsecure: false
      }
      registries: [
        { server: registry.properties.loginServer, identity: identity.id }
      ]
      // Read from Key Vault with the identity; mounted as a file below, never an environment variable.
      secrets: [
        { name: 'paging-key', keyVaultUrl: pagingKeySecret.properties.secretUri, identity: identity.id }
      ]
    }
    template: {
      scale: {
        minReplicas: minReplicas
        maxReplicas: max(minReplicas, 5)
      }
      containers: [
        {
          name: 'fhirgate'
          image: image
          args: [ 'serve' ]
          resources: { cpu: json('1.0'), memory: '2Gi' }
          env: [
            { name: 'FHIRGATE_LISTEN', value: '0.0.0.0:8080' }
            { name: 'FHIRGATE_BASE_URL', value: 'https://${appName}.${appEnvironment.properties.defaultDomain}' }
            { name: 'FHIRGATE_STORE', value: 'cosmos:${cosmos.properties.documentEndpoint}' }
            { name: 'FHIRGATE_COSMOS_AUTH', value: 'managed-identity' }
            { name: 'FHIRGATE_COSMOS_CLIENT_ID', value: identity.properties.clientId }
            { name: 'FHIRGATE_COSMOS_DATABASE', value: 'fhir' }
            { name: 'FHIRGATE_COSMOS_CONTAINER', value: 'resources' }
            { name: 'FHIRGATE_AUTH_ISSUER', value: '${az.environment().authentication.loginEndpoint}${entraTenantId}/v2.0' }
            { name: 'FHIRGATE_AUTH_AUDIENCES', value: join(audiences, ',') }
            { name: 'FHIRGATE_POLICY_SETS', value: join(policySets, ',') }
            { name: 'FHIRGATE_FEDERATION_PAGING_KEY_FILE', value: '/run/secrets/fhirgate/paging-key' }
            { name: 'FHIRGATE_LOG_FORMAT', value: 'json' }
          ]
          volumeMounts: [
            { volumeName: 'secrets', mountPath: '/run/secrets/fhirgate' }
            { volumeName: 'data', mountPath: '/var/lib/fhirgate' }
          ]
          probes: [
            {
              type: 'Readiness'
              httpGet: { path: '/health/ready', port: 8080 }
              periodSeconds: 5
            }
            {
              type: 'Liveness'
              httpGet: { path: '/health/live', port: 8080 }
              periodSeconds: 10
            }
            {
              type: 'Startup'
              httpGet: { path: '/health/live', port: 8080 }
              periodSeconds: 2
              failureThreshold: 30
            }
          ]
        }
      ]
      volumes: [
        { name: 'secrets', storageType: 'Secret', secrets: [ { secretRef: 'paging-key', path: 'paging-key' } ] }
        { name: 'data', storageType: 'EmptyDir' }
      ]
    }
  }
}

@description('The FHIR base URL: GET <url>/metadata.')
output url string = 'https://${app.properties.configuration.ingress.fqdn}'
output identityClientId string = identity.properties.clientId
output cosmosEndpoint string = cosmos.properties.documentEndpoint
output keyVaultName string = vault.name
