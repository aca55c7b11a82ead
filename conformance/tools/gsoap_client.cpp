// An independent SOAP stack against vcds: gSOAP C++ client generated from wsdl/vcds.wsdl
// (wsdl2h + soapcpp2 -C), WS-Addressing through the wsaapi plugin, SOAP 1.1.
// Built and run by conformance/test_interop_gsoap.py.
#include "soapH.h"
#include "PortalEPRSoap11Binding.nsmap"
#include "wsaapi.h"
#include <cstdio>
#include <string>

static const char *CREATE = "http://www.gridforum.org/cddlm/deployapi/2005/02/wsdl/PortalEPR/CreateRequest";
static const char *LOOKUP = "http://www.gridforum.org/cddlm/deployapi/2005/02/wsdl/PortalEPR/LookupSystemRequest";
static const char *GETRP = "http://docs.oasis-open.org/wsrf/rpw-2/GetResourceProperty/GetResourcePropertyRequest";

int main(int argc, char **argv)
{
  if (argc < 2) { fprintf(stderr, "usage: %s PORTAL-URL\n", argv[0]); return 2; }
  const char *portal = argv[1];
  struct soap *soap = soap_new();
  soap_register_plugin(soap, soap_wsa);

  _api__createRequest creq;
  _api__createResponse cresp;
  soap_wsa_request(soap, soap_wsa_rand_uuid(soap), portal, CREATE);
  if (soap_call___vcdsw__Create(soap, portal, CREATE, &creq, cresp)) { soap_print_fault(soap, stderr); return 1; }
  printf("create.ResourceId=%s\n", cresp.ResourceId.c_str());
  printf("create.Address=%s\n", cresp.systemReference.Address ? cresp.systemReference.Address : "(null)");

  _api__lookupSystemRequest lreq;
  lreq.ResourceId = cresp.ResourceId;
  struct wsa5__EndpointReferenceType lresp;
  soap_wsa_request(soap, soap_wsa_rand_uuid(soap), portal, LOOKUP);
  if (soap_call___vcdsw__LookupSystem(soap, portal, LOOKUP, &lreq, lresp)) { soap_print_fault(soap, stderr); return 1; }
  printf("lookup.Address=%s\n", lresp.Address ? lresp.Address : "(null)");

  _wsrp2__GetResourcePropertyResponse gresp;
  soap_wsa_request(soap, soap_wsa_rand_uuid(soap), portal, GETRP);
  if (soap_call___vcdsw__GetResourceProperty(soap, portal, GETRP, std::string("api:ActiveSystems"), gresp)) { soap_print_fault(soap, stderr); return 1; }
  printf("getrp.elements=%zu\n", gresp.__any.size());
  printf("getrp.mentions_new=%d\n", !gresp.__any.empty() && std::string(gresp.__any[0]).find(cresp.ResourceId) != std::string::npos);

  _api__lookupSystemRequest bad;
  bad.ResourceId = "urn:uuid:00000000-0000-4000-8000-000000000000";
  struct wsa5__EndpointReferenceType bresp;
  soap_wsa_request(soap, soap_wsa_rand_uuid(soap), portal, LOOKUP);
  int rc = soap_call___vcdsw__LookupSystem(soap, portal, LOOKUP, &bad, bresp);
  const char *code = rc == SOAP_FAULT ? *soap_faultcode(soap) : "(none)";
  const char *detail = rc == SOAP_FAULT && soap_fault_detail(soap) ? *soap_faultdetail(soap) : NULL;
  printf("fault.rc=%d\nfault.code=%s\n", rc, code ? code : "(null)");
  printf("fault.has_detail=%d\n",
         soap->fault && (soap->fault->detail || soap->fault->SOAP_ENV__Detail) ? 1 : 0);
  (void)detail;
  soap_destroy(soap); soap_end(soap); soap_free(soap);
  return 0;
}
