//! The wire types shared by the token resources (`access-tokens`, `refresh-tokens`,
//! `company-user-access-tokens`): each is a resource with id `null` and token attributes.

/// Declares the resource and document types of a token resource whose attributes type
/// implements `From<Issued>`.
macro_rules! token_document {
    ($type_name:literal, $type_enum:ident, $attributes:ident, $resource:ident, $document:ident) => {
        $crate::api::jsonapi::resource_type!($type_enum, Value, $type_name);

        #[doc = concat!("A `", $type_name, "` resource.")]
        #[derive(Debug, Clone, poem_openapi::Object)]
        pub struct $resource {
            #[doc = concat!("Always `", $type_name, "`.")]
            #[oai(rename = "type")]
            pub ty: $type_enum,
            /// Always `null`: issued tokens are no addressable resource.
            #[oai(nullable)]
            pub id: Option<String>,
            pub attributes: $attributes,
            pub links: $crate::api::jsonapi::SelfLinks,
        }

        #[doc = concat!("The response document of `", $type_name, "`.")]
        #[derive(Debug, Clone, poem_openapi::Object)]
        pub struct $document {
            pub data: $resource,
        }

        impl $document {
            pub fn new(issued: $crate::service::sessions::Issued, self_link: String) -> Self {
                Self {
                    data: $resource {
                        ty: $type_enum::Value,
                        id: None,
                        attributes: issued.into(),
                        links: $crate::api::jsonapi::SelfLinks { self_link },
                    },
                }
            }
        }
    };
}
pub(crate) use token_document;

/// Declares token attributes with `idCompanyUser` (customer logins and refreshes).
macro_rules! token_attributes_with_company_user {
    ($type_name:literal, $attributes:ident) => {
        #[doc = concat!("The attributes of `", $type_name, "`: the issued tokens.")]
        #[derive(Debug, Clone, poem_openapi::Object)]
        #[oai(rename_all = "camelCase", example)]
        pub struct $attributes {
            /// Always `Bearer`.
            pub token_type: String,
            /// Seconds until the access token expires.
            pub expires_in: i64,
            /// The access token (a JWT) for protected resources.
            pub access_token: String,
            /// The token to get a new access token with, at `POST /refresh-tokens`.
            pub refresh_token: String,
            /// The company user the access token is for; `null` when there is none.
            #[oai(nullable)]
            pub id_company_user: Option<String>,
        }

        impl From<$crate::service::sessions::Issued> for $attributes {
            fn from(issued: $crate::service::sessions::Issued) -> Self {
                Self {
                    token_type: "Bearer".to_owned(),
                    expires_in: issued.expires_in,
                    access_token: issued.access_token,
                    refresh_token: issued.refresh_token,
                    id_company_user: issued.company_user.map(|u| u.to_string()),
                }
            }
        }

        impl poem_openapi::types::Example for $attributes {
            fn example() -> Self {
                Self {
                    token_type: "Bearer".to_owned(),
                    expires_in: 28800,
                    access_token: $crate::api::token_documents::ACCESS_TOKEN_EXAMPLE.to_owned(),
                    refresh_token: $crate::api::token_documents::REFRESH_TOKEN_EXAMPLE.to_owned(),
                    id_company_user: Some(
                        $crate::api::token_documents::COMPANY_USER_EXAMPLE.to_owned(),
                    ),
                }
            }
        }
    };
}
pub(crate) use token_attributes_with_company_user;

/// Declares token attributes of exactly the four Spryker documents (company-user and agent
/// tokens).
macro_rules! token_attributes {
    ($type_name:literal, $attributes:ident) => {
        #[doc = concat!("The attributes of `", $type_name, "`: the issued tokens.")]
        #[derive(Debug, Clone, poem_openapi::Object)]
        #[oai(rename_all = "camelCase", example)]
        pub struct $attributes {
            /// Token type. The default value is `Bearer`.
            pub token_type: String,
            /// Time in seconds in which the token expires. The default value is `28800`.
            pub expires_in: i64,
            /// Authentication token used to send requests to the protected resources.
            pub access_token: String,
            /// Token used to refresh the `accessToken` (`POST /refresh-tokens`).
            pub refresh_token: String,
        }

        impl From<$crate::service::sessions::Issued> for $attributes {
            fn from(issued: $crate::service::sessions::Issued) -> Self {
                Self {
                    token_type: "Bearer".into(),
                    expires_in: issued.expires_in,
                    access_token: issued.access_token,
                    refresh_token: issued.refresh_token,
                }
            }
        }

        impl poem_openapi::types::Example for $attributes {
            fn example() -> Self {
                // The documentation pages' response samples.
                Self {
                    token_type: "Bearer".into(),
                    expires_in: 28800,
                    access_token: "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUz".into(),
                    refresh_token: "def50200d7338763c798a0600f18e".into(),
                }
            }
        }
    };
}
pub(crate) use token_attributes;

/// Examples in the document: shapes, not working tokens.
pub const ACCESS_TOKEN_EXAMPLE: &str = "eyJ0eXAiOiJhdCtqd3QiLCJhbGciOiJFUzI1NiIsImtpZCI6Ii4uLiJ9.eyJpc3MiOiJnbHVlLWF1dGgiLCJzdWIiOiIuLi4ifQ.c2lnbmF0dXJl";
pub const REFRESH_TOKEN_EXAMPLE: &str =
    "0006615ef970c5a2q0x1Mmp0b2tlbi1vcGFxdWUtMjU2LWJpdHMtdXJsc2F";
/// Sonia's company user in the demo dataset.
pub const COMPANY_USER_EXAMPLE: &str = "ebf4b55a-cab0-5ed0-8fb7-525a3eeedeac";
