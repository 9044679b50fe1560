"""Microsoft Dynamics 365 Business Central (API v2.0): the ERP and system of record."""
